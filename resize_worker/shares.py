"""Which lane a worker serves next: the highest that has work, except that waiting lanes get their share.

Pure bookkeeping over worker time, with no Kafka in it. A lane below the first
that has a record in hand while another lane is served is owed
`share / (1 - share)` of that task's time; once it is owed anything, it is
served next and pays back its own task's time. So while several lanes have
work, each lower lane gets at least `share` of the worker's time; with one lane
waiting, nothing is owed or paid, and an idle lane gains no credit to spend
later in a burst.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

# Owed time is capped, so a very long task of a higher lane does not buy a lower one a long run after it.
_MAX_OWED_SECONDS = 5.0


class LaneShares:
    def __init__(self, lanes: Sequence[str], min_share: float) -> None:
        if not 0.0 < min_share < 1.0:
            raise ValueError("a lane's minimum share is between 0 and 1")
        self.lanes = tuple(lanes)
        self._rate = min_share / (1.0 - min_share)
        self._owed: dict[str, float] = dict.fromkeys(self.lanes[1:], 0.0)

    def pick(self, ready: Sequence[str]) -> str | None:
        """The lane to serve next among those with a record in hand."""
        waiting = [lane for lane in self.lanes if lane in ready]
        if not waiting:
            return None
        for lane in waiting[1:]:
            if self._owed[lane] > 0.0:
                return lane
        return waiting[0]

    def served(self, lane: str, seconds: float, ready: Sequence[str]) -> None:
        """Account `seconds` of work on `lane`, taken while the lanes in `ready` had records in hand."""
        if len(set(ready)) < 2:
            # One lane with work: nothing is owed across lanes, and no credit carries into the next contention.
            self._owed = dict.fromkeys(self._owed, 0.0)
            return
        if lane in self._owed:
            self._owed[lane] = max(-_MAX_OWED_SECONDS, self._owed[lane] - seconds)
        for other in set(ready):
            if other != lane and other in self._owed:
                self._owed[other] = min(_MAX_OWED_SECONDS, self._owed[other] + seconds * self._rate)

    def owed(self, lane: str) -> float:
        return self._owed.get(lane, 0.0)


class _Lane(Protocol):
    held: Any

    @property
    def name(self) -> str: ...

    def warm(self) -> bool: ...


def servable(lanes: Sequence[_Lane]) -> list[str]:
    """Lanes with a record in hand that may be served: none below a lane that is not warm yet."""
    names = []
    for lane in lanes:
        if lane.held is not None:
            names.append(lane.name)
        if not lane.warm():
            break
    return names


class IdleWait:
    """How long an idle worker waits on its first lane before looking at the others again.

    A consumer waits on its own lane only: while the worker waits on the first
    lane, a record that arrives in another sits unseen until the wait ends. A long
    wait costs nothing while the other lanes are quiet; once they have had work
    lately, short waits keep their records from waiting on an idle worker (at
    100 ms, a steady stream of second-lane uploads left a core idle a tenth of the
    time and delayed single uploads by up to 100 ms).
    """

    def __init__(self, quiet: float = 0.1, busy: float = 0.005, busy_for: float = 2.0) -> None:
        self.quiet, self.busy, self.busy_for = quiet, busy, busy_for
        self._other_lanes_heard = float("-inf")

    def heard_other_lane(self, now: float) -> None:
        """A lane below the first had a record in hand at `now` (monotonic seconds)."""
        self._other_lanes_heard = now

    def seconds(self, now: float) -> float:
        return self.busy if now - self._other_lanes_heard < self.busy_for else self.quiet
