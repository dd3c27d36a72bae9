"""A token bucket per client: `rate` tokens a second, up to `burst` saved. Per API process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# How often idle buckets are dropped (a bucket that has refilled to its burst is the same as none).
_SWEEP_SECONDS = 30.0


class TokenBuckets:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._swept = clock()

    def take(self, client: str) -> float:
        """Spend one token. Returns 0 when allowed, else the seconds until a token is there."""
        now = self._clock()
        with self._lock:
            if now - self._swept > _SWEEP_SECONDS:
                self._sweep(now)
            tokens, last = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def _sweep(self, now: float) -> None:
        self._buckets = {
            client: (tokens, last)
            for client, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.rate < self.burst
        }
        self._swept = now

    def __len__(self) -> int:
        return len(self._buckets)


class LongPollSlots:
    """How many requests may wait (long-poll) at once: in all, and per client.

    The API serves requests on a fixed pool of threads; a waiting request holds
    one. Capping the waiters leaves threads for everything else (/healthz,
    submissions); a request over the cap is answered at once with the current
    state, which a long-polling client treats like any early answer.
    """

    def __init__(self, total: int, per_client: int) -> None:
        self.total = total
        self.per_client = per_client
        self._by_client: dict[str, int] = {}
        self._waiting = 0
        self._lock = threading.Lock()

    def acquire(self, client: str) -> bool:
        with self._lock:
            held = self._by_client.get(client, 0)
            if self._waiting >= self.total or held >= self.per_client:
                return False
            self._waiting += 1
            self._by_client[client] = held + 1
            return True

    def release(self, client: str) -> None:
        with self._lock:
            self._waiting -= 1
            held = self._by_client.pop(client) - 1
            if held:
                self._by_client[client] = held
