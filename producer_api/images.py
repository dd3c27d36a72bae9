"""POST /api/v1/images/resize and GET /api/v1/images/result/<id>."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, g, jsonify, redirect, request, stream_with_context, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from common import metrics
from common.errors import ObjectNotFound
from common.settings import Settings
from common.store import ObjectStore
from producer_api.bodies import AcceptedBody, DeletingBody
from producer_api.errors import ApiError, error_response
from producer_api.lanes import lane_policy
from producer_api.lookup import ingress, readable_task, requested_wait, task_or_404, wait_for_terminal
from producer_api.validation import auto_quality_problem, parse_order, read_image
from read_model.fold import DELETED, FAILURE, SUCCESS, TaskRow, variant_results
from vocabulary.callback_policy import CallbackPolicy, CallbackRefused, check
from vocabulary.webhook_secrets import WebhookSecrets

bp = Blueprint("images", __name__, url_prefix="/api/v1/images")


@bp.post("/resize")
def submit_resize() -> WerkzeugResponse:
    wait = requested_wait()  # checked before anything is stored: a bad wait leaves no task behind
    task_id, created, lane = _accept_upload()
    response = _finished_within(task_id, wait) if wait > 0 else None
    if response is None:
        # The Celery-era body, exactly; the lane is in the Lane header and the status.
        accepted: AcceptedBody = {"status": "accepted", "message": "Upload complete", "task_id": task_id}
        response = jsonify(accepted)
        response.status_code = 202
    else:
        response.headers["Task-Id"] = task_id
    response.headers["Lane"] = lane
    response.headers["Location"] = url_for("status.task_status", task_id=task_id)
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _accept_upload() -> tuple[str, bool, str]:
    """The upload stored and its event acknowledged: (task id, whether this request created the task, its lane).

    The upload's bytes are let go before any wait: a waiting submit holds a thread, not its image.
    """
    service = ingress()
    settings = service.settings
    order = parse_order(request.form, settings.max_dimension, request.headers.get("Accept", ""), settings.max_variants)
    callback_url = request.form.get("callback_url", "").strip()
    if callback_url:
        order = dataclasses.replace(order, callback_url=checked_callback(callback_url, settings, g.get("client")))
    data, info = read_image(request.files, settings.max_pixels, settings.input_formats)
    problem = auto_quality_problem(order, info.format)
    if problem:
        raise ApiError(422, "invalid_quality", problem)
    idempotency_key = request.headers.get("Idempotency-Key", "").strip()
    if len(idempotency_key) > 255:
        raise ApiError(422, "invalid_idempotency_key", "Idempotency-Key is at most 255 characters")
    client = g.get("client") or "anonymous"
    idempotency = (client, idempotency_key) if idempotency_key else None
    choice = lane_policy().choose(request.form.get("priority", ""), g.get("client"), request.remote_addr or "")
    service.check_backlog(g.get("client"), choice.lane)
    task_id, created = service.submit(order, data, info, idempotency, owner=g.get("client"), lane=choice.lane)
    if created:
        metrics.UPLOAD_BYTES.observe(len(data))
        metrics.LANE_ADMISSIONS.labels(choice.lane.name, choice.reason).inc()
        current_app.logger.info("accepted", extra={"task_id": task_id, "lane": choice.lane.name})
    for upload in request.files.values():
        upload.close()
    return task_id, created, choice.lane.name


def _finished_within(task_id: str, wait: float) -> WerkzeugResponse | None:
    """A submit with ?wait=N, once its task ended within N seconds: the result, or a 422 with the failure.

    The task was accepted either way; a task still running after the wait gets the usual 202.
    """
    row = wait_for_terminal(readable_task(task_id), wait)
    if row.state == DELETED:
        readable_task(task_id)  # deleted while waiting: its 410
    if row.state == SUCCESS and row.result_key is not None:
        return _serve(_recorded(row, _result_of(row)))
    if row.state == FAILURE:
        return error_response(422, "task_failed", _failure(row))
    return None


def checked_callback(url: str, settings: Settings, owner: str | None) -> str:
    """The callback URL if the caller's webhooks can be signed and the policy allows it; a 422 saying why not."""
    secrets: WebhookSecrets = current_app.extensions["webhook_secrets"]
    if not secrets.for_owner(owner):
        raise ApiError(422, "webhooks_disabled", "no webhook secret is configured for this key; callbacks are off")
    try:
        return check(url, CallbackPolicy.from_settings(settings)).url
    except CallbackRefused as e:
        raise ApiError(422, "invalid_callback_url", str(e)) from e


@dataclass(frozen=True)
class _Stored:
    key: str
    content_type: str
    size: int
    etag: str


def _failure(row: TaskRow) -> str:
    """What a failed task's `task_failed` answer says, on the submit and on the result URL alike."""
    return f"task failed: {row.error_code}: {row.error_message}"


def _result_of(row: TaskRow) -> _Stored:
    """The task's result as its outcome recorded it (with variants: the first one)."""
    assert row.result_key is not None
    return _Stored(row.result_key, str(row.result_content_type), int(row.result_size or 0), str(row.result_etag))


def _finished(task_id: str) -> TaskRow:
    """The task's row once it succeeded; with ?wait=N, waits up to N seconds for it to finish."""
    wait = requested_wait()
    row = readable_task(task_id)
    if wait > 0:
        row = wait_for_terminal(row, wait)
        if row.state == DELETED:
            readable_task(task_id)  # deleted while waiting: its 410
    if row.state != SUCCESS or row.result_key is None:
        if row.state == FAILURE:
            raise ApiError(404, "task_failed", _failure(row))
        raise ApiError(404, "result_not_ready", f"task is {row.state}; the result is not ready")
    return row


# A UUID in the path, so that /resize stays a route of its own (Allow: POST) and anything else is a JSON 404.
@bp.delete("/<uuid:task_id>")
def delete_task(task_id: uuid.UUID) -> WerkzeugResponse:
    """Delete a task for good: its owner only; deleting again is no error (and erases again)."""
    row = task_or_404(str(task_id))
    erased = ingress().delete(row, g.get("client"))
    if erased is None:
        # The deletion stands; the bytes follow when the janitor rechecks it.
        deleting: DeletingBody = {"task_id": row.task_id, "status": "DELETED", "erased": False}
        response = jsonify(deleting)
        response.status_code = 202
        return response
    metrics.ERASED_OBJECTS.labels("deleted").inc(erased.objects)
    metrics.ERASED_BYTES.labels("deleted").inc(erased.bytes)
    current_app.logger.info("deleted", extra={"task_id": row.task_id, "objects": erased.objects})
    return Response(status=204)


@bp.get("/result/<task_id>")
def task_result(task_id: str) -> WerkzeugResponse:
    """The result; for a request with variants, its first variant."""
    row = _finished(task_id)
    return _serve(_recorded(row, _result_of(row)))


@bp.get("/result/<task_id>/<variant>")
def variant_result(task_id: str, variant: str) -> WerkzeugResponse:
    """One named variant's result."""
    row = _finished(task_id)
    stored = variant_results(row)
    for v in stored:
        if v["name"] == variant:
            return _serve(_recorded(row, _Stored(v["key"], v["content_type"], v["size_bytes"], v["etag"])))
    names = ", ".join(v["name"] for v in stored) or "none"
    raise ApiError(404, "unknown_variant", f"task has no variant {variant!r} (variants: {names})")


# The only types served as results: images the engine writes. Anything else in an outcome event
# (produced straight to Kafka) is not served: this origin is where the web page keeps API keys.
RESULT_CONTENT_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif", "image/avif"}


def _recorded(row: TaskRow, stored: _Stored) -> _Stored:
    """The result if it is what the workers write for this task: its own key under results/, an image type."""
    own = stored.key == f"results/{row.task_id}" or stored.key.startswith(f"results/{row.task_id}/")
    if not own or row.result_bucket != ingress().store.bucket or stored.content_type not in RESULT_CONTENT_TYPES:
        current_app.logger.warning(
            "outcome names a result the service does not serve: %s/%s (%s)",
            row.result_bucket,
            stored.key,
            stored.content_type,
            extra={"task_id": row.task_id},
        )
        raise _missing()
    return stored


# Results up to this size are read whole; larger ones are streamed in chunks.
_WHOLE_BELOW = 1024 * 1024


def _missing() -> ApiError:
    return ApiError(404, "result_missing", "the result object is no longer in the store")


def _streamed(store: ObjectStore, key: str) -> Iterator[bytes]:
    """The object's chunks, its first one read now: a missing object is a 404 before any byte is sent."""
    chunks = store.stream(key)
    try:
        first = next(chunks, b"")
    except ObjectNotFound as e:
        raise _missing() from e
    return itertools.chain([first], chunks)


def _serve(stored: _Stored) -> WerkzeugResponse:
    etag = f'"{stored.etag}"'
    if request.if_none_match and request.if_none_match.contains(stored.etag):
        not_modified = Response(status=304)
        not_modified.headers["ETag"] = etag
        return not_modified
    store = ingress().store
    if request.args.get("redirect") in {"1", "true"}:
        return redirect(store.presigned_get(stored.key), code=302)
    if stored.size <= _WHOLE_BELOW:
        # Most results are thumbnails: one read and one body, no generator between the store and the client.
        try:
            data = store.get(stored.key).data
        except ObjectNotFound as e:
            raise _missing() from e
        response = Response(data, mimetype=stored.content_type)
    else:
        response = Response(stream_with_context(_streamed(store, stored.key)), mimetype=stored.content_type)
    response.headers["Content-Length"] = str(stored.size)
    response.headers["ETag"] = etag
    # Results never change for a task id (replays rewrite identical bytes).
    response.headers["Cache-Control"] = "private, max-age=3600"
    # An image, never a document: no sniffing, no scripts, nothing loaded from it.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
