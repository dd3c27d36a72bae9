"""The resize in a child process under a memory limit and a wall-clock limit.

A crafted file (a GIF frame far larger than its screen, a huge output from a tiny
source) can ask the decoder for gigabytes or minutes. Run in the worker itself,
the kernel's OOM killer would take the worker down before it commits, the
request would be redelivered to the next worker, and so on down the group: a
poison pill. Here the child meets the limit instead: its allocation fails
(RLIMIT_AS) or it is killed at the deadline, the task fails with
`resource_limit`, and a fresh child serves the next task.

The child is started by a fork server that has imported only the engine: never
forked from the worker itself, whose librdkafka threads a fork would copy
mid-flight.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from common import heap
from resize_worker.engine import ResizedImage, Target, resize_many
from vocabulary.errors import ResizeError, ResourceLimit

log = logging.getLogger(__name__)

_CONTEXT = multiprocessing.get_context("forkserver")
# The engine with OpenCV and its face model: imported and loaded once, in the fork server.
_CONTEXT.set_forkserver_preload(["resize_worker.engine"])


def _serve(conn: Connection, memory_limit_bytes: int, nice: int) -> None:
    """The child's loop: one request in, one answer out, until the pipe closes."""
    if nice > 0:
        os.nice(nice)
    heap.keep_freed_buffers()
    if memory_limit_bytes > 0:
        # The limit is what a resize may add to the child as the fork server made it (the engine, OpenCV
        # and its models are mapped already, some 300 MiB of address space, most of it never touched).
        allowed = _address_space() + memory_limit_bytes
        resource.setrlimit(resource.RLIMIT_AS, (allowed, allowed))
    while True:
        try:
            data, targets, budget = conn.recv()
        except EOFError:
            return
        answer: tuple[str, Any]
        try:
            answer = ("ok", resize_many(data, targets, **budget))
        except ResizeError as e:
            answer = ("refused", e)
        except MemoryError:
            answer = ("memory", None)
        except Exception as e:  # noqa: BLE001 - reported to the worker, which fails the task
            answer = ("error", f"{type(e).__name__}: {e}")
        del data
        conn.send(answer)


def _address_space() -> int:
    """This process's mapped address space (VmSize) in bytes; 0 where /proc does not say."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class IsolatedResizer:
    """resize_many in a reused child process; a child that meets a limit is replaced."""

    def __init__(self, memory_limit_mb: int, time_limit_seconds: float, nice: int = 0) -> None:
        self.memory_limit_bytes = memory_limit_mb * 1024 * 1024
        self.time_limit_seconds = time_limit_seconds
        # Added to the child's niceness: a child serving bulk work yields the CPU to the rest.
        self.nice = nice
        self._child: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None

    def _start(self) -> Connection:
        if self._conn is None or self._child is None or not self._child.is_alive():
            self.close()
            parent, child = _CONTEXT.Pipe()
            self._child = _CONTEXT.Process(
                target=_serve, args=(child, self.memory_limit_bytes, self.nice), name="resize-child", daemon=True
            )
            self._child.start()
            child.close()
            self._conn = parent
        return self._conn

    def start(self) -> None:
        """Start the child now (a worker's first child also starts the fork server, ~0.9 s), not at the first task."""
        self._start()

    @property
    def child_pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def resize_many(self, data: bytes, targets: Sequence[Target], **budget: Any) -> list[ResizedImage]:
        """engine.resize_many in the child; `budget` holds its keyword limits (max_pixels, ..., auto)."""
        conn = self._start()
        try:
            conn.send((data, list(targets), budget))
        except OSError:
            # The child died between tasks (killed from outside): a fresh one takes the task.
            self.close()
            conn = self._start()
            conn.send((data, list(targets), budget))
        if not conn.poll(self.time_limit_seconds):
            self.close()
            raise ResourceLimit(f"the resize took longer than the {self.time_limit_seconds:g} s limit")
        try:
            kind, value = conn.recv()
        except (EOFError, ConnectionError):
            if self._child is not None:
                self._child.join(timeout=1)
            exitcode = self._child.exitcode if self._child is not None else None
            self.close()
            raise ResourceLimit(f"the resize process died (exit code {exitcode})") from None
        if kind == "ok":
            return list(value)
        if kind == "refused":
            raise value
        if kind == "memory":
            self.close()  # a fresh child: the old one's heap may be fragmented near the limit
            raise ResourceLimit(f"the resize needed more than the {self.memory_limit_bytes >> 20} MiB limit")
        raise RuntimeError(value)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._child is not None:
            if self._child.is_alive():
                self._child.kill()
            self._child.join(timeout=5)
            self._child = None
