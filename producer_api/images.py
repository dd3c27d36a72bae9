"""POST /api/v1/images/resize and GET /api/v1/images/result/<id>."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context, url_for

from common.errors import ObjectNotFound
from producer_api.errors import ApiError
from producer_api.lookup import ingress, task_or_404
from producer_api.validation import parse_order, read_image
from status_store.fold import FAILURE, SUCCESS

bp = Blueprint("images", __name__, url_prefix="/api/v1/images")


@bp.post("/resize")
def submit_resize() -> tuple[Response, int]:
    service = ingress()
    settings = service.settings
    order = parse_order(request.form, settings.max_dimension)
    data, info = read_image(request.files, settings.max_pixels)
    accepted = service.submit(order, data, info)
    service.record_locally(accepted)
    current_app.logger.info("accepted", extra={"task_id": accepted.task_id})
    response = jsonify({"status": "accepted", "message": "Upload complete", "task_id": accepted.task_id})
    response.headers["Location"] = url_for("status.task_status", task_id=accepted.task_id)
    return response, 202


@bp.get("/result/<task_id>")
def task_result(task_id: str) -> Response:
    row = task_or_404(task_id)
    if row.state != SUCCESS or row.result_key is None:
        if row.state == FAILURE:
            raise ApiError(404, "task_failed", f"task failed: {row.error_code}: {row.error_message}")
        raise ApiError(404, "result_not_ready", f"task is {row.state}; the result is not ready")
    etag = f'"{row.result_etag}"'
    if request.if_none_match and request.if_none_match.contains(str(row.result_etag)):
        not_modified = Response(status=304)
        not_modified.headers["ETag"] = etag
        return not_modified
    store = ingress().store
    chunks = store.stream(row.result_key)
    try:
        first = next(chunks, b"")
    except ObjectNotFound as e:
        raise ApiError(404, "result_missing", "the result object is no longer in the store") from e

    def body() -> Iterator[bytes]:
        yield first
        yield from chunks

    response = Response(stream_with_context(body()), mimetype=row.result_content_type)
    response.headers["Content-Length"] = str(row.result_size)
    response.headers["ETag"] = etag
    # Results never change for a task id (replays rewrite identical bytes).
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
