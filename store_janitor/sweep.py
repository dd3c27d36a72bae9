"""One sweep of the bucket: list each lifecycle prefix, delete what is past its TTL, in paced batches.

Stateless and idempotent: a sweep killed half-way leaves the rest for the next
one, which lists again. Only objects past their TTL by their own time are
deleted, so a sweep never touches a live one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from common import metrics
from common.retention import ORIGINAL_PREFIXES, RESULTS_PREFIX, Listed, Retention, is_expired
from common.store import ObjectStore


@dataclass
class SweepReport:
    listed: int = 0
    expired: int = 0
    deleted: int = 0
    bytes: int = 0
    refused: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Objects deleted per second of the sweep."""
        return self.deleted / self.seconds if self.seconds > 0 else 0.0


class Pacer:
    """Spaces batches so that deletes stay under `rate` objects per second on average."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._started = clock()
        self._done = 0

    def wait_before(self, count: int, stop: threading.Event) -> None:
        """Wait until the deletes done so far are within the rate, then count `count` more (one batch of burst)."""
        delay = self._started + self._done / self.rate - self._clock()
        if delay > 0:
            stop.wait(delay)
        self._done += count


def lifecycle_objects(store: ObjectStore, retention: Retention) -> Iterator[Listed]:
    """Every object under a prefix that has a TTL, a listing page at a time."""
    for prefix in (RESULTS_PREFIX, *ORIGINAL_PREFIXES):
        if retention.ttl_of(prefix) is not None:
            yield from store.listed(prefix)


def sweep(
    store: ObjectStore,
    retention: Retention,
    rate: float,
    batch: int,
    stop: threading.Event | None = None,
    now: datetime | None = None,
) -> SweepReport:
    """Delete every object of the lifecycle prefixes past its TTL as of `now`; stops early when `stop` is set."""
    stop = stop or threading.Event()
    now = now or datetime.now(UTC)
    report = SweepReport()
    started = time.monotonic()
    pacer = Pacer(rate)
    pending: list[Listed] = []

    def flush() -> None:
        if not pending:
            return
        pacer.wait_before(len(pending), stop)
        refused = set(store.delete_many([o.key for o in pending]))
        gone = [o for o in pending if o.key not in refused]
        report.deleted += len(gone)
        report.bytes += sum(o.size for o in gone)
        report.refused += sorted(refused)
        metrics.ERASED_OBJECTS.labels("expired").inc(len(gone))
        metrics.ERASED_BYTES.labels("expired").inc(sum(o.size for o in gone))
        metrics.EXPIRED_BACKLOG.set(report.expired - report.deleted)
        pending.clear()

    for listed in lifecycle_objects(store, retention):
        if stop.is_set():
            break
        report.listed += 1
        if is_expired(listed.key, listed.last_modified, now, retention):
            report.expired += 1
            pending.append(listed)
            if len(pending) >= batch:
                flush()
    if not stop.is_set():
        flush()
    metrics.EXPIRED_BACKLOG.set(report.expired - report.deleted)
    report.seconds = time.monotonic() - started
    return report


def count_expired(store: ObjectStore, retention: Retention, now: datetime | None = None) -> tuple[int, int, int]:
    """(objects listed, expired objects, their bytes), deleting nothing: what the next sweep would do."""
    now = now or datetime.now(UTC)
    listed = expired = size = 0
    for o in lifecycle_objects(store, retention):
        listed += 1
        if is_expired(o.key, o.last_modified, now, retention):
            expired += 1
            size += o.size
    return listed, expired, size
