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
    before = procstat.machine_time()
    _burn(0.5)
    after = procstat.machine_time()
    # This process alone burned 0.5 s; other processes may add to busy, never take from it.
    assert after.busy - before.busy >= 0.4
    assert after.idle >= before.idle and after.stolen >= before.stolen


def test_stolen_time_is_told_apart_from_busy_and_idle() -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    line = f"cpu  {10 * ticks} 0 {5 * ticks} {20 * ticks} {ticks} 0 {ticks} {3 * ticks} 0 0\ncpu0 1 2 3\n"

    machine = procstat.MachineTime.parse(line)

    assert (machine.busy, machine.idle, machine.stolen) == (16.0, 21.0, 3.0)


def test_a_kernel_without_a_steal_column_steals_nothing() -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    assert procstat.MachineTime.parse(f"cpu  {ticks} 0 0 {ticks} 0 0 0\ncpu0 {ticks} 0 0 0 0 0 0\n").stolen == 0.0
