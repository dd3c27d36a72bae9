"""Lanes: priority classes of work, each with a requests topic, a retry topic and a worker group of its own.

LANES names them in priority order, highest first. The first lane keeps the
contract's unsuffixed topic names and the worker group's own name, so producers
and consumer groups from before lanes existed land in it unchanged; every other
lane's names carry its name as a suffix (`image.resize.requested.bulk`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

LANE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class Lane:
    name: str
    # 0 is the highest priority.
    rank: int
    requests_topic: str
    retry_topic: str
    # The consumer group of the workers serving this lane.
    group: str
    partitions: int
    retention_ms: int


def lane_names(listed: str) -> tuple[str, ...]:
    """LANES as names in priority order; ValueError if one is malformed or repeated, or none is given."""
    names = tuple(entry.strip() for entry in listed.split(",") if entry.strip())
    if not names:
        raise ValueError("LANES names no lane")
    for name in names:
        if not LANE_NAME.match(name):
            raise ValueError(f"lane name {name!r} is not [a-z][a-z0-9_-]* (at most 32 characters)")
    if len(set(names)) != len(names):
        raise ValueError(f"LANES names a lane twice: {listed!r}")
    return names


def per_lane(listed: str, names: tuple[str, ...], setting: str) -> dict[str, int]:
    """A `lane=number,...` setting as a mapping; ValueError for an unknown lane or a number below 1."""
    values: dict[str, int] = {}
    for entry in (e.strip() for e in listed.split(",") if e.strip()):
        name, sep, number = entry.partition("=")
        name = name.strip()
        if not sep or name not in names or not number.strip().isdigit() or int(number) < 1:
            raise ValueError(f"{setting} entry {entry!r} is not lane=positive-number with a lane of LANES")
        values[name] = int(number)
    return values


def plan_lanes(
    names: tuple[str, ...],
    requests_topic: str,
    retry_topic: str,
    worker_group: str,
    partitions: int,
    retention_ms: int,
    lane_partitions: Mapping[str, int],
    lane_retention_ms: Mapping[str, int],
) -> tuple[Lane, ...]:
    """Every lane's topics, group, partitions and retention, in priority order."""

    def suffixed(base: str, rank: int, name: str) -> str:
        return base if rank == 0 else f"{base}.{name}"

    return tuple(
        Lane(
            name=name,
            rank=rank,
            requests_topic=suffixed(requests_topic, rank, name),
            retry_topic=suffixed(retry_topic, rank, name),
            group=suffixed(worker_group, rank, name),
            partitions=lane_partitions.get(name, partitions),
            retention_ms=lane_retention_ms.get(name, retention_ms),
        )
        for rank, name in enumerate(names)
    )
