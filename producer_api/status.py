"""GET /api/v1/status/<id>: the Celery-era state vocabulary plus the task's details."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from producer_api.errors import ApiError
from producer_api.lookup import ingress, task_or_404
from producer_api.view_watch import ViewWatch
from status_store.fold import SUCCESS, TERMINAL, TaskRow, requested_variants, variant_results

bp = Blueprint("status", __name__, url_prefix="/api/v1/status")


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def status_body(row: TaskRow) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task_id": row.task_id,
        "status": row.state,
        "attempts": row.attempts,
        "created_at": _time(row.created_at),
        "started_at": _time(row.started_at),
        "finished_at": _time(row.finished_at),
        "request": {"width": row.width, "height": row.height, "mode": row.mode, "format": row.format},
    }
    if row.variants:
        body["request"]["variants"] = requested_variants(row)
    if row.state == SUCCESS:
        body["result"] = {
            "url": url_for("images.task_result", task_id=row.task_id),
            "content_type": row.result_content_type,
            "width": row.result_width,
            "height": row.result_height,
            "size_bytes": row.result_size,
            "source_width": row.source_width,
            "source_height": row.source_height,
        }
        if row.variant_results:
            body["variants"] = [
                {
                    "name": v["name"],
                    "url": url_for("images.variant_result", task_id=row.task_id, variant=v["name"]),
                    "content_type": v["content_type"],
                    "width": v["width"],
                    "height": v["height"],
                    "size_bytes": v["size_bytes"],
                }
                for v in variant_results(row)
            ]
    if row.error_code:
        body["error"] = {"code": row.error_code, "message": row.error_message}
    return body


def wait_seconds(raw: str | None, maximum: float) -> float:
    """The `wait` query parameter: 0 when absent; a 422 outside 0..maximum."""
    if raw is None or raw == "":
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        wait = -1.0
    if not 0.0 <= wait <= maximum:
        raise ApiError(422, "invalid_wait", f"wait must be a number of seconds between 0 and {maximum:g}")
    return wait


def wait_for_terminal(row: TaskRow, wait: float) -> TaskRow:
    """The row once the task has succeeded or failed, or as it stands after `wait` seconds."""
    watch: ViewWatch = current_app.extensions["view_watch"]
    deadline = time.monotonic() + wait
    while row.state not in TERMINAL and (remaining := deadline - time.monotonic()) > 0:
        row = watch.wait_for_change(row.task_id, row.state, remaining) or row
    return row


@bp.get("/<task_id>")
def task_status(task_id: str) -> Response:
    """The task's status; with ?wait=N, answers as soon as the state changes, or after N seconds."""
    wait = wait_seconds(request.args.get("wait"), ingress().settings.max_status_wait_seconds)
    row = task_or_404(task_id)
    if wait > 0 and row.state not in TERMINAL:
        watch: ViewWatch = current_app.extensions["view_watch"]
        row = watch.wait_for_change(row.task_id, row.state, wait) or row
    return jsonify(status_body(row))
