"""Every HTTP error is JSON: {"result": "error", "message": ..., "code": ...}."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from common.encoding import RegistryUnavailable
from common.errors import BrokerUnavailable, ImageServiceError, StoreUnavailable
from producer_api.bodies import ErrorBody
from read_model.errors import ViewError


class IdempotencyConflict(ImageServiceError):
    """The same Idempotency-Key with a different request."""

    code = "idempotency_key_reused"


class ApiError(Exception):
    """An error answer with a stable machine-readable code."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


def error_response(status: int, code: str, message: str, retry_after: int | None = None) -> Response:
    body: ErrorBody = {"result": "error", "message": message, "code": code}
    response = jsonify(body)
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


# Flask's own errors keep their status; the code names them.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


# Bodies up to this size are read and dropped before a 413 is sent: clients that write the whole
# body before they read (urllib, requests) would otherwise meet a closed socket, not the JSON.
# A larger announced body is answered at once and the connection closed.
MAX_DRAINED_BYTES = 64 * 1024 * 1024
_DRAIN_CHUNK = 256 * 1024


def _drain_body() -> bool:
    """Read and drop the request body when it is small enough to; True if it was read whole."""
    length = request.content_length
    if length is None or length > MAX_DRAINED_BYTES:
        return False
    body = request.environ["wsgi.input"]
    left = length
    while left > 0:
        chunk = body.read(min(_DRAIN_CHUNK, left))
        if not chunk:
            return False
        left -= len(chunk)
    return True


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(e: ApiError) -> Response:
        return error_response(e.status, e.code, e.message, e.retry_after)

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException) -> Response:
        status = e.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        response = error_response(status, code, e.description or e.name)
        if status == 413 and not _drain_body():
            response.headers["Connection"] = "close"
        if status == 405 and e.get_headers():
            allow = dict(e.get_headers()).get("Allow")
            if allow:
                response.headers["Allow"] = allow
        return response

    @app.errorhandler(IdempotencyConflict)
    def _conflict(e: IdempotencyConflict) -> Response:
        return error_response(422, e.code, str(e))

    @app.errorhandler(BrokerUnavailable)
    @app.errorhandler(RegistryUnavailable)
    @app.errorhandler(StoreUnavailable)
    @app.errorhandler(ViewError)
    def _unavailable(e: ImageServiceError) -> Response:
        app.logger.warning("dependency unavailable: %s", e)
        message = "service temporarily unavailable, retry later"
        if isinstance(e, BrokerUnavailable) and request.method == "POST":
            # An unacknowledged write may still have been kept by the broker.
            message += " with the same Idempotency-Key: the request may have been recorded"
        return error_response(503, e.code, message, retry_after=2)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception) -> Response:
        app.logger.exception("unhandled error")
        return error_response(500, "internal_error", "internal server error")
