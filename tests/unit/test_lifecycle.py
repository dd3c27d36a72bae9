"""Lifecycle logic: the deletion in the fold, what a row answers over time, TTL rules, the view's purge."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from common.retention import Listed, Retention, expired, is_expired
from common.settings import Settings
from read_model.fold import DELETED, SUCCESS, fold
from read_model.lifecycle import Standing, expires_at, standing
from read_model.view import StatusView
from schemas import ObjectRef, ResizeCompleted, ResizeRequested, StoredImage, TaskDeleted
from store_janitor.sweep import Pacer

TASK = "6f1c1c0e-8a43-4d4b-9a38-2f6a4b0e7c11"
T0 = datetime(2026, 12, 1, tzinfo=UTC)
DAY = timedelta(days=1)
RETENTION = Retention(result=30 * DAY, original=30 * DAY, status=7 * DAY)


def _requested(at: datetime = T0, owner: str | None = "alice") -> ResizeRequested:
    return ResizeRequested(
        task_id=TASK, source=ObjectRef("images", f"originals/{TASK}"), width=10, occurred_at=at, owner=owner
    )


def _completed(at: datetime) -> ResizeCompleted:
    image = StoredImage("images", f"results/{TASK}", "image/jpeg", 10, 10, 100, "e")
    return ResizeCompleted(task_id=TASK, result=image, source_width=20, source_height=20, duration_ms=5, occurred_at=at)


def _deleted(at: datetime) -> TaskDeleted:
    return TaskDeleted(task_id=TASK, owner="alice", occurred_at=at)


def test_a_deletion_wins_in_every_order_and_against_later_outcomes() -> None:
    events = [
        _requested(),
        _completed(T0 + timedelta(seconds=1)),
        _deleted(T0 + timedelta(seconds=2)),
        _completed(T0 + timedelta(seconds=3)),
    ]  # a result that landed after the deletion
    rows = {fold(list(order)) for order in itertools.permutations(events)}
    assert len(rows) == 1
    (row,) = rows
    assert row is not None and row.state == DELETED
    assert row.result_key is None and row.owner == "alice"  # nothing of the result kept; the owner is
    assert fold([*events, *events]) == row  # duplicates change nothing


def test_without_a_deletion_the_latest_outcome_still_wins() -> None:
    row = fold([_requested(), _completed(T0 + timedelta(seconds=3)), _completed(T0 + timedelta(seconds=1))])
    assert row is not None and row.state == SUCCESS and row.finished_at == T0 + timedelta(seconds=3)


def test_a_row_answers_live_then_expired_then_forgotten() -> None:
    row = fold([_requested(), _completed(T0 + DAY)])
    assert row is not None
    assert expires_at(row, RETENTION) == T0 + 31 * DAY  # from the result's write
    assert standing(row, T0 + 31 * DAY - timedelta(seconds=1), RETENTION) is Standing.LIVE
    assert standing(row, T0 + 31 * DAY, RETENTION) is Standing.EXPIRED
    assert standing(row, T0 + 38 * DAY - timedelta(seconds=1), RETENTION) is Standing.EXPIRED
    assert standing(row, T0 + 38 * DAY, RETENTION) is Standing.FORGOTTEN
    forever = Retention(result=None, original=None, status=7 * DAY)
    assert standing(row, T0 + 3650 * DAY, forever) is Standing.LIVE and expires_at(row, forever) is None


def test_an_unfinished_task_expires_from_its_request() -> None:
    row = fold([_requested()])
    assert row is not None and expires_at(row, RETENTION) == T0 + 30 * DAY


def test_a_deleted_row_answers_deleted_for_the_status_ttl_then_is_forgotten() -> None:
    row = fold([_requested(), _deleted(T0 + DAY)])
    assert row is not None
    assert standing(row, T0 + DAY, RETENTION) is Standing.DELETED
    assert standing(row, T0 + 8 * DAY - timedelta(seconds=1), RETENTION) is Standing.DELETED
    assert standing(row, T0 + 8 * DAY, RETENTION) is Standing.FORGOTTEN
    assert expires_at(row, RETENTION) is None


def test_ttls_by_prefix_and_rules_only_for_whole_days() -> None:
    assert RETENTION.ttl_of(f"results/{TASK}/thumb") == 30 * DAY
    assert RETENTION.ttl_of("incoming/catalogue/a.jpg") == 30 * DAY
    assert RETENTION.ttl_of("elsewhere/a.jpg") is None  # not the lifecycle's to delete
    # A day's grace: a store deletes to the day, at its own time of day.
    assert RETENTION.rules() == [("results/", 31), ("originals/", 31), ("incoming/", 31)]
    assert RETENTION.rules_cover_everything
    short = Retention(result=timedelta(seconds=90), original=2 * DAY, status=DAY)
    assert short.rules() == [("originals/", 3), ("incoming/", 3)] and not short.rules_cover_everything
    assert RETENTION.promised_ms == 37 * 24 * 3600 * 1000


def test_an_object_is_expired_from_its_own_time_plus_the_grace() -> None:
    now = T0 + 30 * DAY + RETENTION.grace
    listed = [
        Listed(f"results/{TASK}", T0, 1),
        Listed(f"results/{TASK}/x", T0 + timedelta(seconds=1), 1),
        Listed("originals/a", T0 - DAY, 1),
        Listed("other/b", T0 - 100 * DAY, 1),
    ]
    assert [o.key for o in expired(listed, now, RETENTION)] == [f"results/{TASK}", "originals/a"]
    assert not is_expired("other/b", T0 - 100 * DAY, now, RETENTION)
    assert not is_expired(f"results/{TASK}", T0, now - timedelta(microseconds=1), RETENTION)


def test_settings_refuse_topics_that_forget_before_the_view() -> None:
    assert Settings().topic_retention_ms >= (Settings().retention.promised_ms or 0)
    with pytest.raises(ValidationError, match="retention"):
        Settings(topic_retention_ms=30 * 24 * 3600 * 1000)  # 30 days < 30 + 7
    with pytest.raises(ValidationError, match="LANE_RETENTION_MS"):
        Settings(lane_retention_ms="bulk=1000")
    with pytest.raises(ValidationError, match="for ever"):
        Settings(result_ttl_seconds=0)
    kept = Settings(result_ttl_seconds=0, topic_retention_ms=-1)
    assert kept.retention.result is None and kept.retention.promised_ms is None
    assert Settings(original_ttl_seconds=3600).retention.original == timedelta(hours=1)


def test_the_view_forgets_only_rows_past_their_status_ttl(tmp_path: Path) -> None:
    with StatusView(tmp_path / "view.sqlite3") as view:
        ids = {
            name: f"00000000-0000-4000-8000-00000000000{i}"
            for i, name in enumerate(["old", "fresh", "gone", "deleting"])
        }

        def request(task: str, at: datetime) -> ResizeRequested:
            return ResizeRequested(task_id=task, source=ObjectRef("images", f"originals/{task}"), occurred_at=at)

        now = T0 + 100 * DAY
        view.apply(
            [
                request(ids["old"], now - 38 * DAY),  # expired 8 days ago: forgotten
                request(ids["fresh"], now - DAY),
                request(ids["gone"], now - DAY),
                TaskDeleted(task_id=ids["gone"], occurred_at=now - 8 * DAY),  # deleted 8 days ago
                request(ids["deleting"], now - DAY),
                TaskDeleted(task_id=ids["deleting"], occurred_at=now - DAY),
            ]
        )
        assert view.forget(now, RETENTION, batch=1) == 2
        assert {name for name, task in ids.items() if view.get(task) is not None} == {"fresh", "deleting"}
        assert view.open_tasks(None, ["interactive"], 10) == 0  # deleted tasks are not open


def test_the_pacer_keeps_deletes_under_the_rate() -> None:
    clock = [0.0]

    waited: list[float] = []

    class Clocked(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waited.append(timeout or 0.0)
            clock[0] += timeout or 0.0
            return False

    pacer = Pacer(100.0, clock=lambda: clock[0])
    stop = Clocked()
    for _ in range(5):
        pacer.wait_before(50, stop)
    # 200 deletes paid for before the fifth batch: 2 s at 100/s.
    assert clock[0] == pytest.approx(2.0)
    assert waited[0] == pytest.approx(0.5)
