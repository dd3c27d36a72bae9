"""Cross-origin requests from browsers (CORS), by flask-cors.

The replaced service answered every origin, and single-page apps call the API
straight from the browser, so the default is `*`. That is safe here because
credentials are headers (X-API-Key, Authorization) that a page must hold and
send itself, never cookies a browser would attach on its own: a foreign page
can do nothing with the API that its own script could not do without CORS.
Credentialed requests (cookies) are never allowed.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_cors import CORS

from common.settings import Settings, comma_separated

# What a cross-origin page may send, and what it may read of the answers.
METHODS = ["GET", "HEAD", "POST", "DELETE"]
REQUEST_HEADERS = ["X-API-Key", "Authorization", "Idempotency-Key", "Content-Type"]
EXPOSED_HEADERS = ["Location", "ETag", "Retry-After", "Task-Id", "Lane", "Idempotent-Replayed", "Content-Length"]


def init_app(app: Flask, settings: Settings) -> None:
    origins = comma_separated(settings.cors_allowed_origins)
    if not origins:
        return  # no CORS headers at all: browsers keep to the same origin
    CORS(
        app,
        resources={r"/api/*": {}, r"/openapi.json": {}},
        origins="*" if "*" in origins else origins,
        methods=METHODS,
        allow_headers=REQUEST_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=settings.cors_max_age_seconds,
        supports_credentials=False,
        send_wildcard="*" in origins,
        vary_header=True,
    )
    if "*" not in origins:
        # The answer depends on the Origin (allowed ones get the headers, others none), even with one
        # allowed origin, where flask-cors leaves Vary out: a shared cache must not mix them up.
        @app.after_request
        def _vary_by_origin(response: Response) -> Response:
            if request.path.startswith("/api/") or request.path == "/openapi.json":
                response.vary.add("Origin")
            return response
