"""Kafka and S3 for a run: given addresses win, then Docker, then local processes."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from local_infra.kafka import KafkaBroker, start_kafka
from local_infra.kafka_cluster import KafkaCluster, start_kafka_cluster
from local_infra.process import ManagedProcess
from local_infra.s3 import start_s3

log = logging.getLogger("local_infra")

DEFAULT_ACCESS_KEY = "imgresize"
DEFAULT_SECRET_KEY = "imgresize-local-secret"


class LocalServer(Protocol):
    """A broker or S3 server started here as a process: what a supervisor needs of it."""

    process: ManagedProcess
    ready_seconds: float

    @property
    def name(self) -> str: ...

    def restart(self) -> None: ...


@dataclass(frozen=True)
class Infrastructure:
    """Where the broker and the object store answer, and how to sign for S3."""

    kafka_bootstrap_servers: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    # The servers started here as local processes (none when given or in Docker).
    local_servers: tuple[LocalServer, ...] = field(default=(), compare=False)
    # Brokers in the cluster started here: 3 makes topics replicated (factor 3, min in-sync 2).
    brokers: int = 1

    def as_env(self) -> dict[str, str]:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "S3_ENDPOINT": self.s3_endpoint,
            "S3_ACCESS_KEY": self.s3_access_key,
            "S3_SECRET_KEY": self.s3_secret_key,
        }
        if self.brokers >= 3:
            env.update(TOPIC_REPLICATION_FACTOR="3", TOPIC_MIN_INSYNC_REPLICAS="2")
        return env


def docker_available() -> bool:
    """True when a Docker engine answers its ping (not merely when the client exists)."""
    if os.environ.get("LOCAL_INFRA_NO_DOCKER"):
        return False
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return _docker_client_pings()
    path = host.removeprefix("unix://")
    if not os.path.exists(path):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(3)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b" 200 " in sock.recv(256)
    except OSError:
        return False


def _docker_client_pings() -> bool:
    try:
        import docker  # shipped with testcontainers

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - no engine, no route, no permission: all mean "no"
        return False


def _report(name: str, address: str, seconds: float) -> None:
    message = f"{name} ready on {address} in {seconds:.1f}s"
    log.info(message)
    print(f"[local_infra] {message}", flush=True)


def _kafka(
    stack: contextlib.ExitStack,
    run_dir: Path,
    cache_dir: Path,
    env: Mapping[str, str],
    port: int | None,
    brokers: int = 1,
) -> str | KafkaBroker | KafkaCluster:
    given = env.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        return given
    if brokers > 1:
        ports = [port + i for i in range(brokers)] if port else None
        cluster = start_kafka_cluster(run_dir / "kafka-cluster", cache_dir, nodes=brokers, ports=ports)
        stack.callback(lambda: cluster.stop())  # every node's process of the moment, after any restart
        _report(f"Kafka ({brokers} brokers)", cluster.bootstrap_servers, cluster.ready_seconds)
        return cluster
    if docker_available():
        from testcontainers.community.kafka import KafkaContainer

        container = stack.enter_context(KafkaContainer().with_kraft())
        return str(container.get_bootstrap_server())
    broker = start_kafka(run_dir / "kafka", cache_dir, port=port)
    stack.callback(lambda: broker.stop())  # the broker's process of the moment, after any restart
    _report("Kafka", broker.bootstrap_servers, broker.ready_seconds)
    return broker


def _s3(
    stack: contextlib.ExitStack, run_dir: Path, cache_dir: Path, env: Mapping[str, str], port: int | None
) -> Infrastructure:
    access_key = env.get("S3_ACCESS_KEY") or DEFAULT_ACCESS_KEY
    secret_key = env.get("S3_SECRET_KEY") or DEFAULT_SECRET_KEY
    given = env.get("S3_ENDPOINT")
    if given:
        return Infrastructure("", given, access_key, secret_key)
    if docker_available():
        from testcontainers.community.minio import MinioContainer

        minio = stack.enter_context(MinioContainer(access_key=access_key, secret_key=secret_key))
        return Infrastructure("", str(minio.get_config()["endpoint"]), access_key, secret_key)
    server = start_s3(run_dir / "s3", access_key, secret_key, port=port, cache_dir=cache_dir)
    stack.callback(lambda: server.stop())  # the server's process of the moment, after any restart
    _report(f"S3 ({server.kind})", server.endpoint, server.ready_seconds)
    return Infrastructure("", server.endpoint, access_key, secret_key, (server,))


@contextlib.contextmanager
def provide(
    run_dir: Path,
    cache_dir: Path,
    env: Mapping[str, str] | None = None,
    kafka_port: int | None = None,
    s3_port: int | None = None,
    brokers: int = 1,
) -> Iterator[Infrastructure]:
    """Yield running infrastructure; everything started here is stopped on exit.

    Ports default to free ones; a long-lived stack passes fixed ones (a cluster takes
    `kafka_port` and the ports after it).
    """
    env = os.environ if env is None else env
    with contextlib.ExitStack() as stack:
        kafka = _kafka(stack, run_dir, cache_dir, env, kafka_port, brokers)
        s3 = _s3(stack, run_dir, cache_dir, env, s3_port)
        if isinstance(kafka, KafkaCluster):
            yield dataclasses.replace(
                s3,
                kafka_bootstrap_servers=kafka.bootstrap_servers,
                local_servers=(*kafka.nodes, *s3.local_servers),
                brokers=brokers,
            )
        elif isinstance(kafka, KafkaBroker):
            yield dataclasses.replace(
                s3, kafka_bootstrap_servers=kafka.bootstrap_servers, local_servers=(kafka, *s3.local_servers)
            )
        else:
            yield dataclasses.replace(s3, kafka_bootstrap_servers=kafka)


if __name__ == "__main__":
    # `python -m local_infra.stack`: only Kafka and S3, as `imgresize-stack --infra-only`.
    import sys

    from local_infra.up import main

    main(["--infra-only", *sys.argv[1:]])
