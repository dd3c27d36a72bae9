"""Shared by the read routes: the process's Ingress, and task lookup by a validated id."""

from __future__ import annotations

import uuid

from flask import current_app

from producer_api.errors import ApiError
from producer_api.ingress import Ingress
from status_store.fold import TaskRow


def ingress() -> Ingress:
    return current_app.extensions["ingress"]  # type: ignore[no-any-return]


def canonical_task_id(raw: str) -> str:
    """The lower-case hyphenated form, or a 404 for anything that is not a UUID."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ApiError(404, "not_found", "task ids are UUIDs; no such task") from None


def task_or_404(raw_id: str) -> TaskRow:
    task_id = canonical_task_id(raw_id)
    row = ingress().find_task(task_id)
    if row is None:
        raise ApiError(404, "not_found", f"no task {task_id}")
    return row
