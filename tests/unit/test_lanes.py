"""Lanes as settings, the worker's share of time between lanes, and the API's choice of a lane: pure logic."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.settings import Settings
from producer_api.errors import ApiError
from producer_api.lanes import LanePolicy, parse_key_lanes
from resize_worker.shares import IdleWait, LaneShares, servable


def test_the_first_lane_keeps_the_contract_names_and_the_others_are_suffixed() -> None:
    settings = Settings(
        lanes="interactive,bulk,archive",
        lane_partitions="bulk=12",
        lane_retention_ms="archive=1000",
        result_ttl_seconds=1,
        status_ttl_seconds=0,
    )
    interactive, bulk, archive = settings.lane_plan
    assert (interactive.requests_topic, interactive.retry_topic, interactive.group) == (
        "image.resize.requested",
        "image.resize.retry",
        "resize-workers",
    )
    assert (bulk.requests_topic, bulk.retry_topic, bulk.group) == (
        "image.resize.requested.bulk",
        "image.resize.retry.bulk",
        "resize-workers.bulk",
    )
    assert [lane.rank for lane in settings.lane_plan] == [0, 1, 2]
    assert (interactive.partitions, bulk.partitions, archive.partitions) == (6, 12, 6)
    assert archive.retention_ms == 1000 and bulk.retention_ms == settings.topic_retention_ms
    assert settings.replay_target is archive  # no REPLAY_LANE: the last lane
    assert settings.lane_of_topic("image.resize.retry.bulk") is bulk
    assert settings.lane_of_topic("image.resize.results") is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"lanes": ""},
        {"lanes": "interactive,interactive"},
        {"lanes": "Interactive,bulk"},
        {"lanes": "interactive,bulk.x"},
        {"lane_partitions": "nosuch=3"},
        {"lane_partitions": "bulk=0"},
        {"lane_retention_ms": "bulk"},
        {"worker_lanes": "bulk,nosuch"},
        {"replay_lane": "nosuch"},
        {"lane_min_share": 0.0},
        {"lane_min_share": 1.0},
        {"lanes": "a,b,c,d", "lane_min_share": 0.4},
    ],
)
def test_lane_settings_that_cannot_work_fail_at_start(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**overrides)  # type: ignore[arg-type]


def test_a_worker_serves_the_lanes_it_is_given_in_priority_order() -> None:
    assert [lane.name for lane in Settings(worker_lanes="bulk").served_lanes] == ["bulk"]
    assert [lane.name for lane in Settings(worker_lanes="bulk,interactive").served_lanes] == ["interactive", "bulk"]
    assert [lane.name for lane in Settings().served_lanes] == ["interactive", "bulk"]


def _run(shares: LaneShares, tasks: int, ready: list[str], seconds: dict[str, float]) -> dict[str, float]:
    """Serve `tasks` records while every lane in `ready` always has work; worker time per lane."""
    spent = dict.fromkeys(shares.lanes, 0.0)
    for _ in range(tasks):
        lane = shares.pick(ready)
        assert lane is not None
        shares.served(lane, seconds[lane], ready)
        spent[lane] += seconds[lane]
    return spent


@pytest.mark.parametrize("share", [0.05, 0.2, 0.5])
@pytest.mark.parametrize("bulk_seconds", [0.01, 0.03, 0.2])
def test_bulk_gets_its_share_of_the_time_while_both_lanes_have_work(share: float, bulk_seconds: float) -> None:
    shares = LaneShares(["interactive", "bulk"], share)
    spent = _run(shares, 2000, ["interactive", "bulk"], {"interactive": 0.03, "bulk": bulk_seconds})
    measured = spent["bulk"] / sum(spent.values())
    # Exact up to the rounding of float sums, and never more than one task over.
    assert share - 1e-3 <= measured < share + 0.05, measured


def test_interactive_goes_first_when_contention_begins_and_after_bulk_had_the_worker_alone() -> None:
    shares = LaneShares(["interactive", "bulk"], 0.2)
    for _ in range(50):
        shares.served("bulk", 0.03, ["bulk"])  # bulk alone: no credit builds up
    assert shares.pick(["interactive", "bulk"]) == "interactive"
    assert shares.pick(["bulk"]) == "bulk"
    assert shares.pick([]) is None


def test_a_lane_with_no_work_in_hand_gains_no_credit_to_spend_later() -> None:
    shares = LaneShares(["interactive", "bulk"], 0.2)
    for _ in range(100):
        shares.served("interactive", 0.03, ["interactive"])
    assert shares.owed("bulk") == 0.0
    # Once bulk has work, interactive is served first, then bulk after its share has built up.
    order = []
    for _ in range(6):
        lane = shares.pick(["interactive", "bulk"])
        assert lane is not None
        order.append(lane)
        shares.served(lane, 0.03, ["interactive", "bulk"])
    assert order == ["interactive", "bulk", "interactive", "interactive", "interactive", "interactive"]


def test_with_three_lanes_each_lower_lane_keeps_its_share() -> None:
    shares = LaneShares(["interactive", "bulk", "archive"], 0.2)
    spent = _run(shares, 3000, ["interactive", "bulk", "archive"], {"interactive": 0.03, "bulk": 0.03, "archive": 0.03})
    total = sum(spent.values())
    assert spent["bulk"] / total >= 0.2 - 1e-3 and spent["archive"] / total >= 0.2 - 1e-3
    assert spent["interactive"] > spent["bulk"]


def _policy(**overrides: object) -> LanePolicy:
    return LanePolicy(Settings(**overrides))  # type: ignore[arg-type]


def test_an_upload_takes_its_asked_lane_else_its_keys_default() -> None:
    policy = _policy(key_lanes="importer:bulk:bulk,cms:bulk")
    assert (policy.choose("", "app", "a").lane.name, policy.choose("", "app", "a").reason) == ("interactive", "default")
    assert policy.choose("bulk", "app", "a").lane.name == "bulk"
    assert policy.choose(" BULK ", "app", "a").lane.name == "bulk"
    assert policy.choose("", "cms", "a").lane.name == "bulk"
    assert policy.choose("interactive", "cms", "a").lane.name == "interactive"  # its ceiling is the first lane


class _Lane:
    def __init__(self, name: str, held: bool, warm: bool) -> None:
        self.name, self.held, self._warm = name, ("record" if held else None), warm

    def warm(self) -> bool:
        return self._warm


def test_lanes_below_a_cold_lane_wait_for_it_and_the_cold_lane_itself_is_served() -> None:
    cold_first = [_Lane("interactive", False, False), _Lane("bulk", True, True)]
    assert servable(cold_first) == []
    assert servable([_Lane("interactive", True, False), _Lane("bulk", True, True)]) == ["interactive"]
    warm = [_Lane("interactive", False, True), _Lane("bulk", True, True), _Lane("archive", True, False)]
    assert servable(warm) == ["bulk", "archive"]
    behind_cold_bulk = [_Lane("interactive", False, True), _Lane("bulk", False, False), _Lane("archive", True, True)]
    assert servable(behind_cold_bulk) == []


def test_an_idle_worker_looks_at_the_other_lanes_often_only_while_they_have_had_work() -> None:
    wait = IdleWait(quiet=0.1, busy=0.005, busy_for=2.0)
    assert wait.seconds(now=100.0) == 0.1  # never heard: the first lane alone is worth waiting on
    wait.heard_other_lane(100.0)
    assert wait.seconds(now=100.0) == 0.005
    assert wait.seconds(now=101.9) == 0.005
    assert wait.seconds(now=102.1) == 0.1  # quiet again for longer than busy_for


def test_a_key_asking_above_its_ceiling_is_served_in_its_ceiling() -> None:
    choice = _policy(key_lanes="importer:bulk:bulk").choose("interactive", "importer", "a")
    assert (choice.lane.name, choice.reason) == ("bulk", "ceiling")


def test_an_unknown_lane_is_a_422_invalid_priority() -> None:
    with pytest.raises(ApiError) as refused:
        _policy().choose("urgent", "app", "a")
    assert (refused.value.status, refused.value.code) == (422, "invalid_priority")
    assert "interactive, bulk" in refused.value.message


def test_first_lane_uploads_beyond_a_keys_allowance_go_to_the_second_lane() -> None:
    policy = _policy(interactive_rate_per_second=0.001, interactive_burst=3)
    lanes = [policy.choose("interactive", "script", "a") for _ in range(5)]
    assert [c.lane.name for c in lanes] == ["interactive"] * 3 + ["bulk"] * 2
    assert lanes[-1].reason == "allowance"
    # Another key's allowance is its own; anonymous callers are counted per address.
    assert policy.choose("", "person", "a").lane.name == "interactive"
    assert [policy.choose("", None, "10.0.0.1").lane.name for _ in range(4)][-1] == "bulk"
    assert policy.choose("", None, "10.0.0.2").lane.name == "interactive"


def test_with_one_lane_there_is_nowhere_to_demote_to() -> None:
    policy = _policy(lanes="interactive", interactive_rate_per_second=0.001, interactive_burst=1)
    assert [policy.choose("", "k", "a").lane.name for _ in range(3)] == ["interactive"] * 3


@pytest.mark.parametrize(
    "listed", ["importer", "importer:nosuch", "importer:bulk:nosuch", "importer:interactive:bulk", ":bulk"]
)
def test_malformed_key_lanes_are_refused(listed: str) -> None:
    with pytest.raises(ValueError):
        parse_key_lanes(listed, Settings().lane_plan)
