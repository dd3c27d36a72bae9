"""Which offsets may be committed while webhooks finish out of order. Pure.

Records of a partition arrive in offset order but their webhooks settle in
any order (a slow receiver must not hold up the others). The offset to commit
for a partition is the lowest one still unsettled, or one past the last record
seen when none is: a restart redoes exactly the unsettled ones (and perhaps
some settled after them: at least once).
"""

from __future__ import annotations

TopicPartition = tuple[str, int]


class OffsetTracker:
    def __init__(self) -> None:
        self._unsettled: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}
        self._reported: dict[TopicPartition, int] = {}

    def seen(self, tp: TopicPartition, offset: int, settled: bool) -> None:
        """A record was read; `settled` when it needs no webhook."""
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)
        if not settled:
            self._unsettled.setdefault(tp, set()).add(offset)

    def settle(self, tp: TopicPartition, offset: int) -> None:
        self._unsettled.get(tp, set()).discard(offset)

    def is_tracked(self, tp: TopicPartition, offset: int) -> bool:
        return offset in self._unsettled.get(tp, set())

    def forget(self, partitions: list[TopicPartition]) -> None:
        """Partitions taken away by a rebalance: their new owner redoes what was unsettled."""
        for tp in partitions:
            self._unsettled.pop(tp, None)
            self._next.pop(tp, None)
            self._reported.pop(tp, None)

    @property
    def unsettled(self) -> int:
        return sum(len(offsets) for offsets in self._unsettled.values())

    def committable(self) -> dict[TopicPartition, int]:
        """The offsets to store that moved since the last call."""
        moved = {}
        for tp, next_offset in self._next.items():
            pending = self._unsettled.get(tp)
            offset = min(pending) if pending else next_offset
            if self._reported.get(tp) != offset:
                moved[tp] = offset
                self._reported[tp] = offset
        return moved
