"""CPU time and peak memory of process trees, read from /proc (Linux)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float
    peak_rss_mb: float


def children(pid: int) -> list[int]:
    """Direct children of a process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    pids, frontier = [pid], [pid]
    while frontier:
        frontier = [child for parent in frontier for child in children(parent)]
        pids.extend(frontier)
    return pids


def _cpu_seconds(stat: str) -> float:
    """User plus system time from the text of a /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def usage(pids: list[int]) -> Usage:
    """CPU seconds (user + system) summed, and the largest peak RSS, over live processes."""
    cpu, peak = 0.0, 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        cpu += _cpu_seconds(stat)
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) / 1024)
    return Usage(cpu, peak)


def thread_cpu_seconds(pids: list[int], name_prefixes: tuple[str, ...]) -> float:
    """CPU seconds of the threads of these processes whose name starts with one of the prefixes."""
    cpu = 0.0
    for pid in pids:
        try:
            threads = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for thread in threads:
            try:
                if not (thread / "comm").read_text().startswith(name_prefixes):
                    continue
                stat = (thread / "stat").read_text()
            except OSError:
                continue
            cpu += _cpu_seconds(stat)
    return cpu


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass(frozen=True)
class MachineTime:
    """CPU seconds of the whole machine since boot, all cores, from /proc/stat's first line.

    Idle counts iowait too: a core waiting on a disk is free for another process. Time stolen by the
    hypervisor (given to other guests of the host while this one had work) is neither busy nor idle.
    """

    busy: float
    idle: float
    stolen: float

    @classmethod
    def parse(cls, proc_stat: str) -> MachineTime:
        fields = [int(v) for v in proc_stat.splitlines()[0].split()[1:9]]
        user, nice, system, idle, iowait, irq, softirq, steal = fields + [0] * (8 - len(fields))
        return cls((user + nice + system + irq + softirq) / _TICKS, (idle + iowait) / _TICKS, steal / _TICKS)


def machine_time() -> MachineTime:
    return MachineTime.parse(Path("/proc/stat").read_text())
