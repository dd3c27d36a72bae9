"""GET /api/v1/status/<id>: the Celery-era state vocabulary plus the task's details."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, current_app, jsonify, request

from producer_api import images
from producer_api.bodies import RequestedBody, StatusBody
from producer_api.lookup import ingress, long_poll, readable_task, requested_wait
from producer_api.view_watch import ViewWatch
from read_model.fold import DELETED, SUCCESS, TERMINAL, TaskRow, outcome_details, requested_variants, variant_results
from read_model.lifecycle import expires_at

bp = Blueprint("status", __name__, url_prefix="/api/v1/status")


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _result_url(task_id: str, variant: str | None = None) -> str:
    """What url_for gives for the result routes, without its cost on every status read of a finished task."""
    path = f"{request.script_root}{images.bp.url_prefix}/result/{task_id}"
    return f"{path}/{variant}" if variant else path


def status_body(row: TaskRow, expires: datetime | None = None) -> StatusBody:
    request_body: RequestedBody = {"width": row.width, "height": row.height, "mode": row.mode, "format": row.format}
    if row.variants:
        request_body["variants"] = requested_variants(row)  # type: ignore[typeddict-item]
    body: StatusBody = {
        "task_id": row.task_id,
        "status": row.state,  # type: ignore[typeddict-item]
        "lane": row.lane,
        "attempts": row.attempts,
        "created_at": _time(row.created_at),
        "started_at": _time(row.started_at),
        "finished_at": _time(row.finished_at),
        "expires_at": _time(expires),
        "request": request_body,
    }
    if row.state == SUCCESS:
        details = outcome_details(row)
        body["result"] = {
            "url": _result_url(row.task_id),
            "content_type": row.result_content_type,
            "width": row.result_width,
            "height": row.result_height,
            "size_bytes": row.result_size,
            "source_width": row.source_width,
            "source_height": row.source_height,
            "quality": details.get("quality"),
            "score": details.get("score"),
        }
        if details.get("subjects"):
            body["subjects"] = details["subjects"]
        if row.variant_results:
            body["variants"] = [
                {
                    "name": v["name"],
                    "url": _result_url(row.task_id, v["name"]),
                    "content_type": v["content_type"],
                    "width": v["width"],
                    "height": v["height"],
                    "size_bytes": v["size_bytes"],
                    "quality": v.get("quality"),
                    "score": v.get("score"),
                }
                for v in variant_results(row)
            ]
    if row.error_code:
        body["error"] = {"code": row.error_code, "message": row.error_message}
    return body


@bp.get("/<task_id>")
def task_status(task_id: str) -> Response:
    """The task's status; with ?wait=N, answers as soon as the state changes, or after N seconds."""
    wait = requested_wait()
    row = readable_task(task_id)
    if wait > 0 and row.state not in TERMINAL:
        watch: ViewWatch = current_app.extensions["view_watch"]
        with long_poll(wait) as allowed:
            if allowed:
                row = watch.wait_for_change(row.task_id, row.state, allowed) or row
        if row.state == DELETED:  # deleted while waiting
            row = readable_task(task_id)
    return jsonify(status_body(row, expires_at(row, ingress().settings.retention)))
