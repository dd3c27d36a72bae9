"""The benchmarks' CPU accounting by thread name, read from /proc."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bench import procstat

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")


def _burn(seconds: float) -> None:
    until = time.process_time() + seconds
    while time.process_time() < until:
        pass


def test_threads_are_counted_by_their_name_only() -> None:
    name = Path(f"/proc/self/task/{os.getpid()}/comm").read_text().strip()
    before = procstat.thread_cpu_seconds([os.getpid()], (name[:6],))
    _burn(0.3)
    after = procstat.thread_cpu_seconds([os.getpid()], (name[:6],))
    assert after - before >= 0.2
    assert procstat.thread_cpu_seconds([os.getpid()], ("no thread is called this",)) == 0.0


def test_the_machine_counts_a_burning_core_as_busy() -> None:
    busy_before, idle_before = procstat.machine_cpu_seconds()
    _burn(0.5)
    busy_after, idle_after = procstat.machine_cpu_seconds()
    # This process alone burned 0.5 s; other processes may add to busy, never take from it.
    assert busy_after - busy_before >= 0.4
    assert idle_after >= idle_before
