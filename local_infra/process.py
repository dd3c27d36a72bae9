"""Child processes that die with their parent and are stopped by PID."""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    # Linux only: the kernel sends SIGKILL to the child if the parent dies,
    # even by kill -9, so no broker or S3 server outlives an interrupted run.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass
    os.setpgrp()


_spawn_requests: queue.Queue[tuple[Callable[[], subprocess.Popen[bytes]], Future[subprocess.Popen[bytes]]]] = (
    queue.Queue()
)
_spawner_lock = threading.Lock()
_spawner: threading.Thread | None = None


def _spawn_loop() -> None:
    while True:
        start, result = _spawn_requests.get()
        try:
            result.set_result(start())
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            result.set_exception(e)


def spawn(argv: Sequence[str], **popen_options: Any) -> subprocess.Popen[bytes]:
    """subprocess.Popen of a child that dies with this process, from any thread.

    The kernel sends the parent-death signal when the *thread* that forked the
    child ends, not the process: a broker restarted from a pool thread would be
    killed with it when the pool shuts down. So every child is forked by one
    spawner thread that lives as long as the process.
    """
    global _spawner
    with _spawner_lock:
        if _spawner is None or not _spawner.is_alive():
            _spawner = threading.Thread(target=_spawn_loop, name="spawner", daemon=True)
            _spawner.start()
    result: Future[subprocess.Popen[bytes]] = Future()
    _spawn_requests.put((lambda: subprocess.Popen(list(argv), preexec_fn=die_with_parent, **popen_options), result))
    return result.result()


def go_env(cache_dir: Path) -> dict[str, str]:
    """The environment for `go install` / `go build` of a tool: modules and builds kept under .cache/."""
    gopath = cache_dir / "go"
    # -modcacherw: the module cache stays deletable (`make clean`).
    return {**os.environ, "GOPATH": str(gopath), "GOMODCACHE": str(gopath / "pkg" / "mod"), "GOFLAGS": "-modcacherw"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_block(count: int, low: int = 20_000, high: int = 32_000) -> int:
    """A port p below the kernel's ephemeral range such that p .. p + count - 1 are all free right now.

    free_port() answers from the ephemeral range (32768-60999 by default), where the kernel
    also picks the local ports of outgoing connections: p + 99 may be any client's a moment
    later, and the role meant to listen there cannot. Below that range only listeners take ports.
    """
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(low, high - count)
        if all(_bindable(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no {count} free ports in a row between {low} and {high}")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class ManagedProcess:
    """A started child: its PID, its log file, and a stop that waits for it."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = spawn(argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        terminate(self.popen, timeout)
        self._log.close()


def terminate(popen: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """SIGTERM by PID, then SIGKILL if it has not exited in `timeout` seconds; its exit code.

    For a child started by `spawn`, which leads a process group of its own: whatever of that
    group is still there once it exited (a server's worker that missed its stop) is killed too.
    """
    if popen.poll() is None:
        try:
            popen.send_signal(signal.SIGTERM)
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=5)
    # The group keeps the leader's id while any member lives (the kernel does not hand it out again).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)
    return popen.returncode


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    process: ManagedProcess | None = None,
) -> None:
    """Poll `check` until it returns True; fail early if `process` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise RuntimeError(f"{what}: process exited early\n{process.log_tail()}")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not ready yet, whatever the reason
            pass
        time.sleep(0.2)
    tail = process.log_tail() if process else ""
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s\n{tail}")
