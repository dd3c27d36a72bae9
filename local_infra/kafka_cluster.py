"""A KRaft cluster of combined broker+controller nodes on 127.0.0.1, from the same jars as the single broker.

Every node is a voter of one controller quorum (static voters), formatted with
one cluster id; topics get replication factor 3 and min.insync.replicas 2, so a
write acknowledged with acks=all is on two nodes before the 202, and any one
node may die.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka.admin import AdminClient

from local_infra.kafka import _LOG4J2, _java, ensure_jars, server_properties
from local_infra.process import ManagedProcess, free_port, port_open, wait_until

# The cluster's defaults for what it creates itself (internal topics) and what clients create.
REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2


def _node_properties(node_id: int, data_dir: Path, ports: list[int], controllers: list[int]) -> str:
    voters = ",".join(f"{i + 1}@127.0.0.1:{port}" for i, port in enumerate(controllers))
    replicas = min(REPLICATION_FACTOR, len(ports))
    insync = min(MIN_INSYNC_REPLICAS, replicas)
    return server_properties(
        data_dir,
        ports[node_id - 1],
        controllers[node_id - 1],
        quorum=f"controller.quorum.voters={voters}",
        node_id=node_id,
        replicas=replicas,
        insync=insync,
        extra=[
            f"default.replication.factor={replicas}",
            f"min.insync.replicas={insync}",
            # A dead node's partitions move within seconds, not the default 18 s of silence.
            "broker.session.timeout.ms=6000",
            "broker.heartbeat.interval.ms=1000",
            # A follower that stopped fetching leaves the ISR within seconds, so acks=all writes go on.
            "replica.lag.time.max.ms=6000",
        ],
    )


@dataclass
class ClusterNode:
    """One combined broker+controller: restart() brings it back on its own log and ports."""

    node_id: int
    data_dir: Path
    argv: list[str]
    port: int
    process: ManagedProcess = field(init=False)
    ready_seconds: float = 0.0

    @property
    def name(self) -> str:
        return f"kafka-{self.node_id}"

    def start(self) -> None:
        self.process = ManagedProcess(self.name, self.argv, self.data_dir / "stdout.log")

    def stop(self) -> None:
        if hasattr(self, "process"):
            self.process.stop(timeout=20)

    def registered(self) -> bool:
        """This node answers and the cluster's metadata lists it."""
        if not port_open(self.port):
            return False
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{self.port}", "socket.timeout.ms": 2000})
        return self.node_id in admin.list_topics(timeout=5).brokers

    def restart(self) -> None:
        """Start again after a death, on its own log and ports; return once it is registered again."""
        started = time.monotonic()
        self.stop()
        self.start()
        wait_until(self.registered, 120, self.name, self.process)
        self.ready_seconds = time.monotonic() - started


@dataclass
class KafkaCluster:
    bootstrap_servers: str
    nodes: list[ClusterNode] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    ready_seconds: float = 0.0

    def node(self, node_id: int) -> ClusterNode:
        return self.nodes[node_id - 1]

    def stop(self) -> None:
        """All nodes at once: the last one alone could not finish a controlled shutdown without its quorum."""
        with ThreadPoolExecutor(max(1, len(self.nodes))) as pool:
            list(pool.map(ClusterNode.stop, self.nodes))

    def brokers_up(self) -> int:
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "socket.timeout.ms": 2000})
        return len(admin.list_topics(timeout=5).brokers)


def start_kafka_cluster(
    data_dir: Path, cache_dir: Path, nodes: int = 3, ports: list[int] | None = None, timeout: float = 120.0
) -> KafkaCluster:
    """Format (once) and start `nodes` combined nodes; return once every broker is registered."""
    started = time.monotonic()
    data_dir = data_dir.resolve()
    classpath = str(ensure_jars(cache_dir) / "*")
    data_dir.mkdir(parents=True, exist_ok=True)
    saved = data_dir / "ports"
    if saved.exists():  # a formatted cluster keeps the addresses its quorum was made with
        broker_ports, controller_ports = (
            [int(p) for p in line.split(",")] for line in saved.read_text().splitlines()[:2]
        )
    else:
        broker_ports = ports or [free_port() for _ in range(nodes)]
        controller_ports = [free_port() for _ in range(nodes)]
        saved.write_text(",".join(map(str, broker_ports)) + "\n" + ",".join(map(str, controller_ports)) + "\n")
    cluster_id = (data_dir / "cluster-id").read_text().strip() if (data_dir / "cluster-id").exists() else None
    if cluster_id is None:
        cluster_id = str(uuid.uuid4())
        (data_dir / "cluster-id").write_text(cluster_id)
    cluster = KafkaCluster(",".join(f"127.0.0.1:{p}" for p in broker_ports), ports=broker_ports)
    for node_id in range(1, nodes + 1):
        node_dir = data_dir / f"node-{node_id}"
        node_dir.mkdir(exist_ok=True)
        config = node_dir / "server.properties"
        config.write_text(_node_properties(node_id, node_dir, broker_ports, controller_ports))
        log4j = node_dir / "log4j2.properties"
        log4j.write_text(_LOG4J2.format(log_file=node_dir / "broker.log"))
        log_opt = f"-Dlog4j2.configurationFile={log4j}"
        if not (node_dir / "log" / "meta.properties").exists():
            subprocess.run(
                ["java", log_opt, "-cp", classpath, "kafka.tools.StorageTool", "format"]
                + ["-t", cluster_id, "-c", str(config)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        argv = _java(classpath, "kafka.Kafka", str(config), heap="384m")
        argv.insert(1, log_opt)
        cluster.nodes.append(ClusterNode(node_id, node_dir, argv, broker_ports[node_id - 1]))
    for node in cluster.nodes:
        node.start()

    def all_registered() -> bool:
        return all(port_open(p) for p in broker_ports) and cluster.brokers_up() == nodes

    try:
        wait_until(all_registered, timeout, f"Kafka cluster on {cluster.bootstrap_servers}", cluster.nodes[0].process)
    except BaseException:
        cluster.stop()
        raise
    cluster.ready_seconds = time.monotonic() - started
    for node in cluster.nodes:
        node.ready_seconds = cluster.ready_seconds
    return cluster
