"""A real single-node Apache Kafka (KRaft) from the official jars on Maven Central."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from local_infra.process import ManagedProcess, free_port, port_open, wait_until

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.infra</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

# Broker logs go to a file of their own, at WARN (ISR changes at INFO), so a run's output stays readable.
_LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = WARN
# ISR shrinks and expands: few lines, and what a failover is made of.
logger.partition.name = kafka.cluster.Partition
logger.partition.level = INFO
"""


def ensure_jars(cache_dir: Path, version: str = KAFKA_VERSION) -> Path:
    """Resolve the broker's jars with Maven once; later calls reuse the cache."""
    cache_dir = cache_dir.resolve()
    lib_dir = cache_dir / f"kafka-{version}" / "libs"
    marker = lib_dir / ".complete"
    if marker.exists():
        return lib_dir
    work = cache_dir / f"kafka-{version}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(_POM.format(kafka=version, log4j=LOG4J_VERSION))
    if lib_dir.exists():
        shutil.rmtree(lib_dir)
    # Maven's output is kept for a failure only: on success it is noise.
    fetched = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={lib_dir}",
            "-DincludeScope=runtime",
        ],
        cwd=work,
        capture_output=True,
        text=True,
    )
    if fetched.returncode != 0:
        raise RuntimeError(f"Maven could not fetch Kafka {version}:\n{fetched.stdout}\n{fetched.stderr}")
    marker.write_text(version)
    return lib_dir


@dataclass
class KafkaBroker:
    """A running broker: its address, stop() by PID, and restart() on the same data and ports."""

    bootstrap_servers: str
    process: ManagedProcess
    ready_seconds: float
    data_dir: Path
    cache_dir: Path

    name = "kafka"

    def stop(self) -> None:
        self.process.stop(timeout=20)

    def restart(self) -> None:
        """Start again after a death: the log is recovered, the ports are the ones it was formatted with."""
        self.process.stop()
        again = start_kafka(self.data_dir, self.cache_dir, port=int(self.bootstrap_servers.rsplit(":", 1)[1]))
        self.process, self.ready_seconds = again.process, again.ready_seconds


def server_properties(
    data_dir: Path,
    port: int,
    controller_port: int,
    quorum: str | None = None,
    node_id: int = 1,
    replicas: int = 1,
    insync: int = 1,
    extra: Sequence[str] = (),
) -> str:
    """A combined broker+controller node on 127.0.0.1; alone by default, or one voter of `quorum`."""
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={node_id}",
            quorum or f"controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={data_dir / 'log'}",
            "num.partitions=6",
            f"offsets.topic.replication.factor={replicas}",
            "offsets.topic.num.partitions=6",
            f"transaction.state.log.replication.factor={replicas}",
            f"transaction.state.log.min.isr={insync}",
            f"share.coordinator.state.topic.replication.factor={replicas}",
            f"share.coordinator.state.topic.min.isr={insync}",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "log.retention.hours=-1",
            # The controller's no-op metadata records every 500 ms cost an idle broker ~4 ms of CPU a second.
            "metadata.max.idle.interval.ms=5000",
            *extra,
            "",
        ]
    )


def _previous_ports(config: Path) -> dict[str, int]:
    if not config.exists():
        return {}
    for line in config.read_text().splitlines():
        if line.startswith("listeners="):
            plain, controller = line.removeprefix("listeners=").split(",")
            return {"port": int(plain.rsplit(":", 1)[1]), "controller": int(controller.rsplit(":", 1)[1])}
    return {}


def _java(classpath: str, main: str, *args: str, heap: str) -> list[str]:
    return ["java", f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseSerialGC", "-cp", classpath, main, *args]


def start_kafka(
    data_dir: Path,
    cache_dir: Path,
    port: int | None = None,
    heap: str = "512m",
    timeout: float = 90.0,
) -> KafkaBroker:
    """Format a KRaft log dir under `data_dir` and start a broker on 127.0.0.1."""
    started = time.monotonic()
    data_dir = data_dir.resolve()
    lib_dir = ensure_jars(cache_dir)
    classpath = str(lib_dir / "*")
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "server.properties"
    # A formatted log dir records the controller's address: reuse the ports it was made with.
    previous = _previous_ports(config)
    port = port or previous.get("port") or free_port()
    controller_port = previous.get("controller") or free_port()
    config.write_text(server_properties(data_dir, port, controller_port))
    log4j = data_dir / "log4j2.properties"
    log4j.write_text(_LOG4J2.format(log_file=data_dir / "broker.log"))
    log_opt = f"-Dlog4j2.configurationFile={log4j}"

    if not (data_dir / "log" / "meta.properties").exists():
        subprocess.run(
            [
                "java",
                log_opt,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                str(uuid.uuid4()),
                "-c",
                str(config),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    argv = _java(classpath, "kafka.Kafka", str(config), heap=heap)
    argv.insert(1, log_opt)
    process = ManagedProcess("kafka", argv, data_dir / "stdout.log")
    bootstrap = f"127.0.0.1:{port}"

    def answers_metadata() -> bool:
        if not port_open(port):
            return False
        admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 1000})
        metadata = admin.list_topics(timeout=1)
        return len(metadata.brokers) == 1

    try:
        wait_until(answers_metadata, timeout, f"Kafka on {bootstrap}", process)
    except BaseException:
        process.stop()
        raise
    return KafkaBroker(bootstrap, process, time.monotonic() - started, data_dir, cache_dir)
