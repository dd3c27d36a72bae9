"""A fast attempt needs no ResizeStarted; status reads never wait on the view's writer."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from read_model.errors import ViewError
from read_model.fold import SUCCESS, TaskRow, fold
from read_model.view import StatusView
from resize_worker.started import StartedNotice
from schemas import ObjectRef, ResizeCompleted, ResizeRequested, ResizeStarted, StoredImage

TASK = "0b8e6f4e-1f0a-4a55-9f49-0a3d5f7e2c11"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _completed(at: datetime, duration_ms: int) -> ResizeCompleted:
    image = StoredImage("images", f"results/{TASK}", "image/jpeg", 400, 400, 100, "etag")
    return ResizeCompleted(
        task_id=TASK, occurred_at=at, result=image, source_width=800, source_height=600, duration_ms=duration_ms
    )


def test_an_outcome_without_started_says_when_its_attempt_began() -> None:
    request = ResizeRequested(task_id=TASK, occurred_at=T0, source=ObjectRef("images", "k"), width=400)
    row = fold([request, _completed(T0 + timedelta(seconds=1), 40)])
    assert row is not None and row.state == SUCCESS
    assert row.started_at == T0 + timedelta(seconds=1) - timedelta(milliseconds=40)


def test_the_earliest_start_wins_in_any_order() -> None:
    started = ResizeStarted(task_id=TASK, occurred_at=T0 + timedelta(milliseconds=500))
    completed = _completed(T0 + timedelta(seconds=2), 1000)  # began at 1.0 s, after the Started
    for events in ([started, completed], [completed, started]):
        row = fold(list(events))
        assert row is not None and row.started_at == started.occurred_at


def test_a_disarmed_notice_is_never_sent() -> None:
    sent: list[str] = []
    notice = StartedNotice(after_seconds=0.2)
    notice.arm(lambda: sent.append("started"))
    notice.disarm()
    time.sleep(0.4)
    assert sent == []


def test_a_notice_past_its_delay_is_sent_once_before_disarm_returns() -> None:
    sent: list[str] = []
    notice = StartedNotice(after_seconds=0.05)
    notice.arm(lambda: sent.append("started"))
    time.sleep(0.3)
    notice.disarm()
    assert sent == ["started"]
    notice.arm(lambda: sent.append("again"))
    notice.disarm()
    time.sleep(0.1)
    assert sent == ["started"]


def test_a_zero_delay_sends_at_once() -> None:
    sent: list[str] = []
    StartedNotice(after_seconds=0).arm(lambda: sent.append("started"))
    assert sent == ["started"]


def test_a_reader_answers_while_the_writer_holds_its_lock(tmp_path: Path) -> None:
    path = tmp_path / "view.sqlite3"
    with StatusView(path) as writer:
        writer.apply([ResizeRequested(task_id=TASK, source=ObjectRef("images", "k"), width=400)])
    reader = StatusView(path, read_only=True)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("DELETE FROM tasks")  # not committed: readers see the last commit
    try:
        started = time.monotonic()
        row = reader.get(TASK)
        assert row is not None and row.width == 400
        assert time.monotonic() - started < 1.0  # a writer's connection would wait up to its 10 s busy timeout
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        reader.close()


def test_a_reader_cannot_write_and_does_not_create_the_file(tmp_path: Path) -> None:
    with pytest.raises(ViewError):
        StatusView(tmp_path / "missing.sqlite3", read_only=True).get(TASK)
    assert not (tmp_path / "missing.sqlite3").exists()
    path = tmp_path / "view.sqlite3"
    StatusView(path).close()
    reader = StatusView(path, read_only=True)
    try:
        with pytest.raises(ViewError):
            reader.apply([ResizeRequested(task_id=TASK, source=ObjectRef("images", "k"), width=400)])
    finally:
        reader.close()


def test_many_threads_read_through_their_own_kept_connections(tmp_path: Path) -> None:
    from producer_api.views import ViewConnections

    views = ViewConnections(tmp_path / "view.sqlite3")
    views.writer().apply([ResizeRequested(task_id=TASK, source=ObjectRef("images", "k"), width=400)])
    seen: list[tuple[StatusView, bool]] = []

    def read() -> None:
        first = views.reader()
        assert first is views.reader()  # kept for the thread
        seen.append((first, first.get(TASK) is not None))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(view) for view, _ in seen}) == 4  # the list keeps them alive: ids are not reused
    assert all(found for _, found in seen)


def test_a_long_poll_wakes_for_its_own_task_only(tmp_path: Path) -> None:
    from producer_api.view_watch import ViewWatch

    other = "1c9f7a5f-2a1b-4b66-8a5a-1b4e6a8f3d22"
    path = tmp_path / "view.sqlite3"
    with StatusView(path) as writer:
        writer.apply([ResizeRequested(task_id=t, source=ObjectRef("images", "k"), width=400) for t in (TASK, other)])
    watch = ViewWatch(path)
    woken: dict[str, object] = {}

    def wait(task_id: str, timeout: float) -> None:
        woken[task_id] = watch.wait_for_change(task_id, "PENDING", timeout)

    waiters = [threading.Thread(target=wait, args=(TASK, 5.0)), threading.Thread(target=wait, args=(other, 0.5))]
    for w in waiters:
        w.start()
    time.sleep(0.1)
    with StatusView(path) as writer:
        writer.apply([_completed(T0 + timedelta(seconds=1), 40)])
    for w in waiters:
        w.join()
    row = woken[TASK]
    assert isinstance(row, TaskRow) and row.state == SUCCESS
    assert woken[other] is None  # its task did not change: it waited out its timeout


def test_a_change_just_before_the_wait_is_not_missed(tmp_path: Path) -> None:
    from producer_api.view_watch import ViewWatch

    path = tmp_path / "view.sqlite3"
    with StatusView(path) as writer:
        writer.apply([ResizeRequested(task_id=TASK, source=ObjectRef("images", "k"), width=400)])
        writer.apply([_completed(T0 + timedelta(seconds=1), 40)])  # after the caller read PENDING
    started = time.monotonic()
    row = ViewWatch(path).wait_for_change(TASK, "PENDING", 5.0)
    assert row is not None and row.state == SUCCESS
    assert time.monotonic() - started < 1.0


def test_writers_opening_a_new_view_at_once_all_succeed(tmp_path: Path) -> None:
    # An API host and its projector start together: both make the schema of a file that does not exist yet.
    for round_ in range(15):
        path = tmp_path / f"view-{round_}.sqlite3"
        barrier = threading.Barrier(4)
        failures: list[BaseException] = []

        def open_view(
            path: Path = path, barrier: threading.Barrier = barrier, failures: list[BaseException] = failures
        ) -> None:
            barrier.wait()
            try:
                StatusView(path).close()
            except BaseException as e:  # noqa: BLE001 - collected and asserted below
                failures.append(e)

        threads = [threading.Thread(target=open_view) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        with StatusView(path, read_only=True) as reader:
            assert reader.generation()


def test_status_result_links_are_the_result_routes_urls() -> None:
    """The status body builds its result links directly; they must stay what url_for gives, prefix included."""
    from flask import Flask, url_for

    from producer_api import images
    from producer_api.status import _result_url

    app = Flask(__name__)
    app.register_blueprint(images.bp)
    task_id = "0b6f2f0e-5d5c-4d6e-9a57-1f7c1a0e2b11"
    for script_name in ("", "/resizer"):
        with app.test_request_context("/", base_url=f"http://localhost{script_name}/"):
            assert _result_url(task_id) == url_for("images.task_result", task_id=task_id)
            assert _result_url(task_id, "thumb_2x") == url_for(
                "images.variant_result", task_id=task_id, variant="thumb_2x"
            )
            assert _result_url(task_id).startswith(f"{script_name}/api/v1/images/result/")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="file events are inotify's")
def test_a_commit_wakes_the_watcher_without_waiting_for_its_backstop(tmp_path: Path, monkeypatch) -> None:
    """The watcher sleeps until the view's files change; with a 60 s backstop, only a file event can wake it."""
    from producer_api import view_watch

    monkeypatch.setattr(view_watch, "_BACKSTOP", 60.0)
    changes = view_watch._FileChanges(tmp_path)
    assert changes.timeout == 60.0  # inotify is in use, not the 2 ms tick
    changes.close()
    path = tmp_path / "view.sqlite3"
    with StatusView(path) as writer:
        writer.apply([ResizeRequested(task_id=TASK, source=ObjectRef("images", "k"), width=400)])
    watch = view_watch.ViewWatch(path)
    woken: list[TaskRow | None] = []
    waiter = threading.Thread(target=lambda: woken.append(watch.wait_for_change(TASK, "PENDING", 30.0)))
    waiter.start()
    time.sleep(0.3)  # the watcher has looked once and sleeps on the file events
    with StatusView(path) as writer:
        writer.apply([_completed(T0 + timedelta(seconds=1), 40)])
    waiter.join(10.0)
    assert not waiter.is_alive() and woken[0] is not None and woken[0].state == SUCCESS


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="file events are inotify's")
def test_a_new_waiter_is_looked_up_at_once_while_the_watcher_sleeps(tmp_path: Path, monkeypatch) -> None:
    """A task that changed before its waiter registered: the registration itself wakes the sleeping watcher."""
    from producer_api import view_watch

    monkeypatch.setattr(view_watch, "_BACKSTOP", 60.0)
    other = "1c9f7a5f-2a1b-4b66-8a5a-1b4e6a8f3d22"
    path = tmp_path / "view.sqlite3"
    with StatusView(path) as writer:
        writer.apply([ResizeRequested(task_id=t, source=ObjectRef("images", "k"), width=400) for t in (TASK, other)])
        writer.apply([_completed(T0 + timedelta(seconds=1), 40)])
    watch = view_watch.ViewWatch(path)
    sleeper = threading.Thread(target=watch.wait_for_change, args=(other, "PENDING", 3.0))
    sleeper.start()
    time.sleep(0.3)  # the watcher runs, has looked, and sleeps: nothing will be written
    started = time.monotonic()
    row = watch.wait_for_change(TASK, "PENDING", 30.0)  # the caller read PENDING before the commit
    assert row is not None and row.state == SUCCESS
    assert time.monotonic() - started < 2.0  # not the 30 s wait, not the 60 s backstop
    sleeper.join()


def test_states_name_each_known_task_and_leave_out_unknown_ones(tmp_path: Path) -> None:
    path = tmp_path / "view.sqlite3"
    with StatusView(path) as writer:
        writer.apply([ResizeRequested(task_id=TASK, source=ObjectRef("images", "k"), width=400)])
        writer.apply([_completed(T0 + timedelta(seconds=1), 40)])
        writer.apply([ResizeRequested(task_id="1c9f7a5f-2a1b-4b66-8a5a-1b4e6a8f3d22", source=ObjectRef("i", "k"))])
    with StatusView(path, read_only=True) as reader:
        states = reader.states({TASK, "1c9f7a5f-2a1b-4b66-8a5a-1b4e6a8f3d22", "never-accepted"})
    assert states == {TASK: SUCCESS, "1c9f7a5f-2a1b-4b66-8a5a-1b4e6a8f3d22": "PENDING"}
