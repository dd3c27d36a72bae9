"""The peers `make bench-peers` compares against, installed under .cache/ and started on loopback.

- thumbor 7.8.0 (Python + Pillow): its own venv, the file loader over a local
  folder, no storage, 2 processes, JPEG quality 85, baseline (not progressive).
- imaginary 1.2.4 (Go + libvips): built from the Go module proxy when Go and
  libvips (Debian's libvips-dev) are present; the image goes in the POST body.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from bench import procstat
from local_infra.process import ManagedProcess, free_port, go_env, port_open, wait_until

THUMBOR_VERSION = "7.8.0"
IMAGINARY_VERSION = "v1.2.4"
SOURCE_NAME = "photo.jpg"


@dataclass
class Peer:
    """A running image server and how one client asks it for the 400x400 JPEG."""

    name: str
    process: ManagedProcess
    base_url: str

    def fetch(self, session: requests.Session, image: bytes, width: int, height: int) -> bytes:
        raise NotImplementedError

    def pids(self) -> list[int]:
        return procstat.tree(self.process.pid)

    def stop(self) -> None:
        """The server and every process it forked (thumbor's --processes), by PID."""
        forked = [pid for pid in self.pids() if pid != self.process.pid]
        self.process.stop()
        for pid in forked:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class Thumbor(Peer):
    def fetch(self, session: requests.Session, image: bytes, width: int, height: int) -> bytes:
        response = session.get(f"{self.base_url}/unsafe/{width}x{height}/{SOURCE_NAME}", timeout=60)
        response.raise_for_status()
        return response.content


class Imaginary(Peer):
    def fetch(self, session: requests.Session, image: bytes, width: int, height: int) -> bytes:
        response = session.post(
            f"{self.base_url}/crop?width={width}&height={height}&quality=85&type=jpeg",
            data=image,
            headers={"Content-Type": "image/jpeg"},
            timeout=60,
        )
        response.raise_for_status()
        return response.content


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def thumbor_binary(cache: Path) -> Path:
    venv = cache / f"thumbor-{THUMBOR_VERSION}"
    binary = venv / "bin" / "thumbor"
    if not binary.exists():
        print(f"installing thumbor {THUMBOR_VERSION} into {venv} (once)", flush=True)
        _run([sys.executable, "-m", "venv", str(venv)])
        _run([str(venv / "bin" / "pip"), "install", "-q", f"thumbor=={THUMBOR_VERSION}"])
    return binary


def start_thumbor(cache: Path, work: Path, image: bytes, processes: int = 2) -> Thumbor:
    binary = thumbor_binary(cache)
    images = work / "thumbor-images"
    images.mkdir(parents=True, exist_ok=True)
    (images / SOURCE_NAME).write_bytes(image)
    config = work / "thumbor.conf"
    config.write_text(
        "\n".join(
            [
                "LOADER = 'thumbor.loaders.file_loader'",
                f"FILE_LOADER_ROOT_PATH = {str(images)!r}",
                "STORAGE = 'thumbor.storages.no_storage'",
                "RESULT_STORAGE = None",
                "ALLOW_UNSAFE_URL = True",
                "QUALITY = 85",
                "PROGRESSIVE_JPEG = False",
                "AUTO_WEBP = False",
                "",
            ]
        )
    )
    port = free_port()
    argv = [str(binary), "-i", "127.0.0.1", "-p", str(port), "-c", str(config), "--processes", str(processes)]
    process = ManagedProcess("thumbor", argv, work / "thumbor.log")
    peer = Thumbor(f"thumbor {THUMBOR_VERSION}", process, f"http://127.0.0.1:{port}")
    wait_until(lambda: requests.get(f"{peer.base_url}/healthcheck", timeout=2).ok, 60, "thumbor", process)
    return peer


def imaginary_binary(cache: Path) -> Path | None:
    """Built once from the module proxy; None when Go or libvips is missing."""
    binary = cache / f"imaginary-{IMAGINARY_VERSION}"
    if binary.exists():
        return binary
    go = shutil.which("go")
    has_vips = subprocess.run(["pkg-config", "--exists", "vips"], check=False).returncode == 0
    if go is None or not has_vips:
        print("imaginary skipped: needs Go and libvips (apt-get install libvips-dev)", flush=True)
        return None
    print(f"building imaginary {IMAGINARY_VERSION} (once)", flush=True)
    env = go_env(cache)
    module = f"github.com/h2non/imaginary@{IMAGINARY_VERSION}"
    subprocess.run([go, "mod", "download", module], check=True, env=env, stdout=subprocess.DEVNULL)
    source = Path(env["GOMODCACHE"]) / "github.com" / "h2non" / f"imaginary@{IMAGINARY_VERSION}"
    subprocess.run([go, "build", "-o", str(binary), "."], check=True, cwd=source, env=env, stdout=subprocess.DEVNULL)
    return binary


def start_imaginary(cache: Path, work: Path) -> Imaginary | None:
    binary = imaginary_binary(cache)
    if binary is None:
        return None
    port = free_port()
    process = ManagedProcess("imaginary", [str(binary), "-a", "127.0.0.1", "-p", str(port)], work / "imaginary.log")
    wait_until(lambda: port_open(port), 30, "imaginary", process)
    return Imaginary(f"imaginary {IMAGINARY_VERSION}", process, f"http://127.0.0.1:{port}")
