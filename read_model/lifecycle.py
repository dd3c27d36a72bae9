"""What a task's row answers at a given time: live, expired, deleted, or forgotten. Pure.

Answers are computed from the row's times and the TTLs, not from when a janitor
or a purge ran: every API host, and a view rebuilt from the topics, answers the
same for the same task at the same moment.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from common.retention import Retention
from read_model.fold import DELETED, TaskRow


class Standing(Enum):
    LIVE = "live"
    # Past RESULT_TTL: 410 expired, until STATUS_TTL later.
    EXPIRED = "expired"
    # Deleted by its owner: 410 deleted, until STATUS_TTL later.
    DELETED = "deleted"
    # Past its status TTL too: answered as an id never seen (404); the view drops the row.
    FORGOTTEN = "forgotten"


def _last_word(row: TaskRow) -> datetime | None:
    """When the task last changed in a way that starts its result TTL: its outcome, else its request."""
    return row.finished_at or row.created_at or row.lifecycle_at


def expires_at(row: TaskRow, retention: Retention) -> datetime | None:
    """When the task's result (or, unfinished, the task) expires; None: never, or already deleted."""
    if row.state == DELETED or retention.result is None:
        return None
    start = _last_word(row)
    return start + retention.result if start else None


def standing(row: TaskRow, now: datetime, retention: Retention) -> Standing:
    if row.state == DELETED:
        deleted_at = row.lifecycle_at
        if deleted_at is not None and deleted_at + retention.status <= now:
            return Standing.FORGOTTEN
        return Standing.DELETED
    expiry = expires_at(row, retention)
    if expiry is None or now < expiry:
        return Standing.LIVE
    return Standing.FORGOTTEN if expiry + retention.status <= now else Standing.EXPIRED
