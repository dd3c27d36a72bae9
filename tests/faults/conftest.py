"""Fault injection needs servers of its own: a broker and an S3 server each test may stop and restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from common.settings import Settings
from local_infra.kafka import KafkaBroker, start_kafka
from local_infra.process import spawn, terminate
from local_infra.s3 import S3Server, start_s3
from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def _needs_local_servers() -> None:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("S3_ENDPOINT"):
        pytest.skip("fault tests stop and restart servers; they need local ones, not given addresses")


@dataclass
class RestartableKafka:
    data_dir: Path
    broker: KafkaBroker

    @property
    def bootstrap_servers(self) -> str:
        return self.broker.bootstrap_servers

    def kill(self) -> None:
        self.broker.process.popen.send_signal(signal.SIGKILL)
        self.broker.process.stop()

    def start(self) -> None:
        port = int(self.bootstrap_servers.rsplit(":", 1)[1])
        self.broker = start_kafka(self.data_dir, ROOT / ".cache", port=port)


@dataclass
class RestartableS3:
    data_dir: Path
    server: S3Server

    def kill(self) -> None:
        self.server.process.popen.send_signal(signal.SIGKILL)
        self.server.process.stop()

    def start(self) -> None:
        port = int(self.server.endpoint.rsplit(":", 1)[1])
        self.server = start_s3(self.data_dir, self.server.access_key, self.server.secret_key, port=port)


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[RestartableKafka]:
    _needs_local_servers()
    kafka = RestartableKafka(tmp_path / "own-kafka", start_kafka(tmp_path / "own-kafka", ROOT / ".cache"))
    yield kafka
    kafka.broker.stop()


@pytest.fixture
def own_s3(tmp_path: Path) -> Iterator[RestartableS3]:
    _needs_local_servers()
    s3 = RestartableS3(tmp_path / "own-s3", start_s3(tmp_path / "own-s3", "faults-key", "faults-secret-key"))
    yield s3
    s3.server.stop()


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a role process use exactly these settings."""
    env = {**os.environ, **settings.as_env()}
    env.update(extra)
    return env


@dataclass
class RoleProcesses:
    """Role processes started by a test, stopped by PID at its end."""

    log_dir: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, argv: list[str], env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}-{len(self.started)}.log").open("wb")
        process = spawn(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.started:
            terminate(process, max(0.1, deadline - time.monotonic()))


@pytest.fixture
def role_processes(tmp_path: Path) -> Iterator[RoleProcesses]:
    roles = RoleProcesses(tmp_path)
    yield roles
    roles.stop_all()


@pytest.fixture
def wait_for() -> Callable[..., None]:
    def wait(check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    return wait
