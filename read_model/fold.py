"""The projection as a pure fold: apply(row | None, event) -> row.

The row is a function of the *set* of a task's events: every part of it is a
maximum (or minimum) over a total order of events, so applying events in any
order, any number of times, gives the same row, and a later lifecycle state
never goes back.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import singledispatch
from typing import Any

from schemas.events import Event, ResizeCompleted, ResizeFailed, ResizeRequested, ResizeStarted, TaskDeleted

PENDING, STARTED, RETRY, SUCCESS, FAILURE = "PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE"
# A deleted task: outranks every other state, so no outcome, redelivery or replay brings it back.
DELETED = "DELETED"
TERMINAL = frozenset({SUCCESS, FAILURE, DELETED})


@dataclass(frozen=True)
class TaskRow:
    """One task as the status endpoint shows it."""

    task_id: str
    state: str = PENDING
    attempts: int = 0
    # The request (the earliest ResizeRequested by time, then event id).
    created_at: datetime | None = None
    request_event_id: str | None = None
    width: int | None = None
    height: int | None = None
    mode: str | None = None
    format: str | None = None
    source_bucket: str | None = None
    source_key: str | None = None
    # JSON list of the requested variants (name, width, height, mode, format); None for one output.
    variants: str | None = None
    # The earliest start seen: of a ResizeStarted, or of a completed attempt (its time minus its duration).
    started_at: datetime | None = None
    started_event_id: str | None = None
    # The event that decides the state: its place in the lifecycle order.
    lifecycle_rank: int = -1
    lifecycle_attempt: int = 0
    lifecycle_at: datetime | None = None
    lifecycle_event_id: str | None = None
    finished_at: datetime | None = None
    # Outcome.
    result_bucket: str | None = None
    result_key: str | None = None
    result_content_type: str | None = None
    result_width: int | None = None
    result_height: int | None = None
    result_size: int | None = None
    result_etag: str | None = None
    source_width: int | None = None
    source_height: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    # JSON list of the stored variants (name, key, content_type, width, height, size_bytes, etag, quality, score).
    variant_results: str | None = None
    # The API key (its name) that created the task; None: readable by any caller.
    owner: str | None = None
    # The lane of the request's topic (None: not known, e.g. folded before lanes). A request copied
    # into another lane (a replay) is the same event twice: of equal events, the first lane by name.
    lane: str | None = None
    # JSON of what v7 outcomes add: the result's quality and score, and the crops' subjects.
    outcome_details: str | None = None


# Rank within an attempt; terminal events outrank any non-terminal one.
_RANK = {PENDING: 0, STARTED: 1, RETRY: 2, SUCCESS: 3, FAILURE: 3, DELETED: 4}


def _class_of(state: str) -> int:
    """Progress 0, outcome 1, deletion 2: a higher class always wins."""
    return 2 if state == DELETED else 1 if state in TERMINAL else 0


def _lifecycle_key(klass: int, attempt: int, rank: int, at: datetime | None, event_id: str | None) -> tuple:  # type: ignore[type-arg]
    """Order of the events that decide the state.

    A deletion outranks everything, any outcome outranks any progress. Among
    outcomes the latest wins, so a replay's new result supersedes the old one;
    among progress events, the later attempt, then the later step.
    """
    when = at.isoformat() if at else ""
    if klass:
        return (klass, when, event_id or "")
    return (0, attempt, rank, when, event_id or "")


def _row_key(row: TaskRow) -> tuple:  # type: ignore[type-arg]
    return _lifecycle_key(
        _class_of(row.state), row.lifecycle_attempt, row.lifecycle_rank, row.lifecycle_at, row.lifecycle_event_id
    )


def _state_of(event: Event) -> tuple[str, int]:
    """The state an event stands for, and the attempt it belongs to."""
    if isinstance(event, ResizeRequested):
        return PENDING, 0
    if isinstance(event, ResizeStarted):
        return STARTED, event.attempt
    if isinstance(event, ResizeCompleted):
        return SUCCESS, event.attempt
    if isinstance(event, ResizeFailed):
        return (RETRY if event.retriable else FAILURE), event.attempt
    if isinstance(event, TaskDeleted):
        return DELETED, 0
    raise TypeError(f"no fold for {type(event).__name__}")


def _outcome_fields(event: Event) -> dict[str, object]:
    """What the deciding event says about the result or the error (cleared otherwise: a deletion clears all)."""
    cleared: dict[str, object] = {
        "result_bucket": None,
        "result_key": None,
        "result_content_type": None,
        "result_width": None,
        "result_height": None,
        "result_size": None,
        "result_etag": None,
        "source_width": None,
        "source_height": None,
        "error_code": None,
        "error_message": None,
        "finished_at": None,
        "variant_results": None,
        "outcome_details": None,
    }
    if isinstance(event, ResizeCompleted):
        r = event.result
        cleared.update(
            result_bucket=r.bucket,
            result_key=r.key,
            result_content_type=r.content_type,
            result_width=r.width,
            result_height=r.height,
            result_size=r.size_bytes,
            result_etag=r.etag,
            source_width=event.source_width,
            source_height=event.source_height,
            finished_at=event.occurred_at,
            variant_results=_variant_results(event),
            outcome_details=_outcome_details(event),
        )
    elif isinstance(event, ResizeFailed):
        cleared.update(error_code=event.error_code, error_message=event.error_message)
        if not event.retriable:
            cleared["finished_at"] = event.occurred_at
    return cleared


def _variant_results(event: ResizeCompleted) -> str | None:
    if not event.variants:
        return None
    return json.dumps(
        [
            {
                "name": v.name,
                "bucket": v.image.bucket,
                "key": v.image.key,
                "content_type": v.image.content_type,
                "width": v.image.width,
                "height": v.image.height,
                "size_bytes": v.image.size_bytes,
                "etag": v.image.etag,
                "quality": v.image.quality,
                "score": v.image.score,
            }
            for v in event.variants
        ]
    )


def _outcome_details(event: ResizeCompleted) -> str | None:
    if event.result.quality is None and event.result.score is None and not event.subjects:
        return None
    subjects = [dataclasses.asdict(s) for s in event.subjects]
    return json.dumps({"quality": event.result.quality, "score": event.result.score, "subjects": subjects})


def outcome_details(row: TaskRow) -> dict[str, Any]:
    """The row's result quality and score and the crops' subjects, decoded (empty before v7)."""
    return json.loads(row.outcome_details) if row.outcome_details else {}


def _requested_variants(event: ResizeRequested) -> str | None:
    if not event.variants:
        return None
    return json.dumps(
        [
            {"name": v.name, "width": v.width, "height": v.height, "mode": v.mode, "format": v.format}
            for v in event.variants
        ]
    )


def variant_results(row: TaskRow) -> list[dict[str, Any]]:
    """The row's stored variants, decoded."""
    return json.loads(row.variant_results) if row.variant_results else []


def requested_variants(row: TaskRow) -> list[dict[str, Any]]:
    """The row's requested variants, decoded."""
    return json.loads(row.variants) if row.variants else []


def _apply_lifecycle(row: TaskRow, event: Event) -> TaskRow:
    state, attempt = _state_of(event)
    key = _lifecycle_key(_class_of(state), attempt, _RANK[state], event.occurred_at, event.event_id)
    if key <= _row_key(row):
        return row if attempt <= row.attempts else dataclasses.replace(row, attempts=attempt)
    return dataclasses.replace(
        row,
        attempts=max(row.attempts, attempt),
        state=state,
        lifecycle_rank=_RANK[state],
        lifecycle_attempt=attempt,
        lifecycle_at=event.occurred_at,
        lifecycle_event_id=event.event_id,
        **_outcome_fields(event),  # type: ignore[arg-type]
    )


def _earlier(at: datetime, event_id: str, than_at: datetime | None, than_id: str | None) -> bool:
    return than_at is None or (at.isoformat(), event_id) < (than_at.isoformat(), than_id or "")


@singledispatch
def _apply_specific(event: Event, row: TaskRow, lane: str | None) -> TaskRow:
    return row


@_apply_specific.register
def _(event: ResizeRequested, row: TaskRow, lane: str | None) -> TaskRow:
    if not _earlier(event.occurred_at, event.event_id, row.created_at, row.request_event_id):
        same = (event.occurred_at, event.event_id) == (row.created_at, row.request_event_id)
        if same and lane is not None and (row.lane is None or lane < row.lane):
            return dataclasses.replace(row, lane=lane)
        return row
    return dataclasses.replace(
        row,
        created_at=event.occurred_at,
        request_event_id=event.event_id,
        width=event.width,
        height=event.height,
        mode=event.mode,
        format=event.format,
        source_bucket=event.source.bucket,
        source_key=event.source.key,
        variants=_requested_variants(event),
        owner=event.owner,
        lane=lane,
    )


@_apply_specific.register
def _(event: ResizeStarted, row: TaskRow, lane: str | None) -> TaskRow:
    if not _earlier(event.occurred_at, event.event_id, row.started_at, row.started_event_id):
        return row
    return dataclasses.replace(row, started_at=event.occurred_at, started_event_id=event.event_id)


@_apply_specific.register
def _(event: ResizeCompleted, row: TaskRow, lane: str | None) -> TaskRow:
    # Workers announce a start only for attempts that run long; an outcome says when its attempt began.
    began = event.occurred_at - timedelta(milliseconds=max(0, event.duration_ms))
    if not _earlier(began, event.event_id, row.started_at, row.started_event_id):
        return row
    return dataclasses.replace(row, started_at=began, started_event_id=event.event_id)


def apply(row: TaskRow | None, event: Event, lane: str | None = None) -> TaskRow:
    """Fold one event, read from `lane`'s topic if a request, into a task's row. Idempotent, commutative, monotonic."""
    if row is None:
        row = TaskRow(task_id=event.task_id)
    if row.task_id != event.task_id:
        raise ValueError(f"event for {event.task_id} applied to row {row.task_id}")
    return _apply_lifecycle(_apply_specific(event, row, lane), event)


def bounded_in_time(event: Event, logged_at: datetime, skew: timedelta) -> Event:
    """The event, claiming no time later than its record's log time plus the allowed clock skew.

    Outcomes are ordered by time, the latest winning: an event produced straight
    to Kafka dated 9999 would otherwise win its task's fold for ever. The bound
    comes from the record's own timestamp, stored in the log (and refused by the
    broker when far in the future), so a replay or a rebuild folds the same rows.
    """
    latest = logged_at + skew
    if event.occurred_at > latest:
        return dataclasses.replace(event, occurred_at=latest)
    return event


def fold(events: list[Event], row: TaskRow | None = None) -> TaskRow | None:
    for event in events:
        row = apply(row, event)
    return row
