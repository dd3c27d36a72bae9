"""Which lane an upload goes to: what it asks, its API key's default and ceiling, and the first lane's allowance.

A key's ceiling is the highest lane it may use; asking above it is not an
error, the upload is served in the ceiling lane (an import job's key set to
bulk/bulk lands in bulk whatever it sends). The first lane also has a rate
allowance per key: uploads beyond it are served in the second lane, so a key
cannot pass bulk traffic off as interactive, while a person's occasional upload
is never slowed. Every upload is accepted; only the lane is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from common.lanes import Lane
from common.settings import Settings, comma_separated
from producer_api.errors import ApiError
from producer_api.rate_limit import TokenBuckets


@dataclass(frozen=True)
class KeyLanes:
    default: Lane
    ceiling: Lane


def parse_key_lanes(listed: str, lanes: tuple[Lane, ...]) -> dict[str, KeyLanes]:
    """KEY_LANES (`name:default[:ceiling]` entries) per key name.

    ValueError on an unknown lane, or a default above its ceiling."""
    by_name = {lane.name: lane for lane in lanes}
    policies: dict[str, KeyLanes] = {}
    for entry in comma_separated(listed):
        parts = [part.strip() for part in entry.split(":")]
        if len(parts) not in (2, 3) or not parts[0] or any(p not in by_name for p in parts[1:]):
            raise ValueError(f"KEY_LANES entry {entry!r} is not name:default[:ceiling] with lanes of LANES")
        default = by_name[parts[1]]
        ceiling = by_name[parts[2]] if len(parts) == 3 else lanes[0]
        if default.rank < ceiling.rank:
            raise ValueError(f"KEY_LANES entry {entry!r}: the default lane is above the ceiling")
        policies[parts[0]] = KeyLanes(default, ceiling)
    return policies


@dataclass(frozen=True)
class LaneChoice:
    lane: Lane
    # asked, default, ceiling (asked above it) or allowance (over the first lane's rate).
    reason: str


class LanePolicy:
    """One per API process: the lanes, the keys' defaults and ceilings, and the first lane's token buckets."""

    def __init__(self, settings: Settings) -> None:
        self.lanes = settings.lane_plan
        self._by_name = {lane.name: lane for lane in self.lanes}
        self._keys = parse_key_lanes(settings.key_lanes, self.lanes)
        self._allowance = TokenBuckets(settings.interactive_rate_per_second, settings.interactive_burst)

    def choose(self, asked: str, client: str | None, address: str) -> LaneChoice:
        """The lane for an upload that asks for `asked` ('' for none); 422 invalid_priority for an unknown lane."""
        policy = self._keys.get(client or "", KeyLanes(self.lanes[0], self.lanes[0]))
        name = asked.strip().lower()
        if not name:
            choice = LaneChoice(policy.default, "default")
        elif name not in self._by_name:
            known = ", ".join(lane.name for lane in self.lanes)
            raise ApiError(422, "invalid_priority", f"priority must be one of {known}")
        elif self._by_name[name].rank < policy.ceiling.rank:
            choice = LaneChoice(policy.ceiling, "ceiling")
        else:
            choice = LaneChoice(self._by_name[name], "asked")
        if choice.lane.rank == 0 and len(self.lanes) > 1 and self._allowance.take(client or address) > 0:
            return LaneChoice(self.lanes[1], "allowance")
        return choice


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions[_EXTENSION] = LanePolicy(settings)


def lane_policy() -> LanePolicy:
    """This API process's lane policy."""
    policy: LanePolicy = current_app.extensions[_EXTENSION]
    return policy


_EXTENSION = "imgresize.lanes"
