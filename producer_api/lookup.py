"""Shared by the read routes: the process's Ingress, task lookup by a validated id, and long-poll waits."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from flask import current_app, g, request

from producer_api.errors import ApiError
from producer_api.ingress import Ingress
from producer_api.rate_limit import LongPollSlots
from producer_api.view_watch import ViewWatch
from read_model.fold import TERMINAL, TaskRow
from read_model.lifecycle import Standing, expires_at, standing


def ingress() -> Ingress:
    return current_app.extensions["ingress"]  # type: ignore[no-any-return]


def canonical_task_id(raw: str) -> str:
    """The lower-case hyphenated form, or a 404 for anything that is not a UUID."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ApiError(404, "not_found", "task ids are UUIDs; no such task") from None


def task_or_404(raw_id: str) -> TaskRow:
    """The task, if it exists and the caller may see it: a task created with a key is that key's alone.

    Another key gets the same 404 as for a task that does not exist: no oracle. So
    does a task past its status TTL (forgotten), whether or not the view still holds
    its row. An expired or deleted task is returned: see `readable_task`.
    """
    return _visible(raw_id)[0]


def _visible(raw_id: str) -> tuple[TaskRow, Standing]:
    """`task_or_404`'s row, with what it answers now."""
    task_id = canonical_task_id(raw_id)
    service = ingress()
    row = service.find_task(task_id)
    if row is None:
        raise ApiError(404, "not_found", f"no task {task_id}")
    if row.owner is not None and row.owner != g.get("client"):
        # The work an unknown id costs (the log ends asked of Kafka, the view checked against them)
        # is done for another key's task too, so the time of the 404 does not tell that it exists.
        service.caught_up_row(task_id)
        raise ApiError(404, "not_found", f"no task {task_id}")
    now = standing(row, datetime.now(UTC), service.settings.retention)
    if now is Standing.FORGOTTEN:
        raise ApiError(404, "not_found", f"no task {task_id}")
    return row, now


def readable_task(raw_id: str) -> TaskRow:
    """The task as `task_or_404` finds it, or a 410 once it expired (RESULT_TTL_SECONDS) or was deleted."""
    row, gone = _visible(raw_id)
    if gone is Standing.DELETED:
        raise ApiError(410, "deleted", f"task {row.task_id} was deleted; its images are erased")
    if gone is Standing.EXPIRED:
        expired = expires_at(row, ingress().settings.retention)
        when = f" at {expired.isoformat().replace('+00:00', 'Z')}" if expired else ""
        raise ApiError(410, "expired", f"task {row.task_id} expired{when}; its images are erased")
    return row


def _wait_seconds(raw: str | None, maximum: float) -> float:
    if raw is None or raw == "":
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        wait = -1.0
    if not 0.0 <= wait <= maximum:
        raise ApiError(422, "invalid_wait", f"wait must be a number of seconds between 0 and {maximum:g}")
    return wait


@contextmanager
def long_poll(wait: float) -> Iterator[float]:
    """The wait this request may have: the one asked for while a slot is free, else 0 (answer at once)."""
    slots: LongPollSlots = current_app.extensions["long_polls"]
    client = g.get("identity") or f"addr:{request.remote_addr}"
    if wait <= 0 or not slots.acquire(client):
        yield 0.0
        return
    try:
        yield wait
    finally:
        slots.release(client)


def wait_for_terminal(row: TaskRow, wait: float) -> TaskRow:
    """The row once the task has succeeded or failed, or as it stands after `wait` seconds."""
    watch: ViewWatch = current_app.extensions["view_watch"]
    with long_poll(wait) as allowed:
        deadline = time.monotonic() + allowed
        while row.state not in TERMINAL and (remaining := deadline - time.monotonic()) > 0:
            row = watch.wait_for_change(row.task_id, row.state, remaining) or row
    return row


def requested_wait() -> float:
    """The request's `wait` query parameter in seconds: 0 when absent; a 422 outside 0..MAX_STATUS_WAIT_SECONDS."""
    if not request.query_string:  # most reads: no need to parse a query into a MultiDict
        return 0.0
    return _wait_seconds(request.args.get("wait"), ingress().settings.max_status_wait_seconds)
