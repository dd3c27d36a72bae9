"""How long results, originals and statuses are kept, and which stored objects that makes expired. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

# Where each kind of object lives in the service's bucket.
RESULTS_PREFIX = "results/"
ORIGINAL_PREFIXES = ("originals/", "incoming/")


@dataclass(frozen=True)
class Retention:
    """TTLs; None: kept for ever."""

    result: timedelta | None
    original: timedelta | None
    # How long an expired or deleted task still answers 410 before it is forgotten (404).
    status: timedelta
    # Objects are deleted this long after their TTL: a result is written a little before its task's
    # outcome (which starts the TTL the status shows), and listings give times to the second.
    grace: timedelta = timedelta(seconds=60)

    @classmethod
    def of_seconds(cls, result: int, original: int, status: int, grace: float = 60.0) -> Retention:
        return cls(
            timedelta(seconds=result) if result else None,
            timedelta(seconds=original) if original else None,
            timedelta(seconds=status),
            timedelta(seconds=grace),
        )

    @property
    def promised_ms(self) -> int | None:
        """How long after its last event the view may still answer for a task; None: for ever."""
        if self.result is None or self.original is None:
            return None
        return int((max(self.result, self.original) + self.status).total_seconds() * 1000)

    def ttl_of(self, key: str) -> timedelta | None:
        """The TTL of an object of the service's bucket, by its prefix; None: not the lifecycle's to delete."""
        if key.startswith(RESULTS_PREFIX):
            return self.result
        if key.startswith(ORIGINAL_PREFIXES):
            return self.original
        return None

    def rules(self) -> list[tuple[str, int]]:
        """(prefix, days) for the store's own lifecycle rules; only TTLs that are whole days can be rules.

        A day more than the TTL: the rules' grace (a store deletes at its own time of day, to the day).
        """
        ttls = [(RESULTS_PREFIX, self.result), *((p, self.original) for p in ORIGINAL_PREFIXES)]
        return [(prefix, ttl.days + 1) for prefix, ttl in ttls if ttl is not None and _whole_days(ttl)]

    @property
    def rules_cover_everything(self) -> bool:
        """Whether lifecycle rules alone express every TTL (so no sweep is needed where the store takes them)."""
        return all(ttl is None or _whole_days(ttl) for ttl in (self.result, self.original))


def _whole_days(ttl: timedelta) -> bool:
    return ttl.days >= 1 and ttl == timedelta(days=ttl.days)


@dataclass(frozen=True)
class Listed:
    """An object as a bucket listing shows it."""

    key: str
    last_modified: datetime
    size: int


def is_expired(key: str, last_modified: datetime, now: datetime, retention: Retention) -> bool:
    """Whether a sweep may delete the object: past its TTL and the grace after it, by the object's own time.

    Reads do not wait for this: the routes answer 410 from the task's times (read_model.lifecycle).
    """
    ttl = retention.ttl_of(key)
    return ttl is not None and last_modified + ttl + retention.grace <= now


def expired(objects: Iterable[Listed], now: datetime, retention: Retention) -> Iterator[Listed]:
    """The listed objects past their TTL."""
    return (o for o in objects if is_expired(o.key, o.last_modified, now, retention))
