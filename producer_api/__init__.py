"""The HTTP ingress: `create_app(settings=None)` builds the Flask app."""

from __future__ import annotations

import atexit
import io
from typing import IO

from flask import Flask, Request, Response
from werkzeug.middleware.proxy_fix import ProxyFix

from common import heap, metrics
from common.logs import configure_logging
from common.settings import Settings, load_settings
from producer_api import cors, images, lanes, openapi, probes, status, web
from producer_api.errors import register_error_handlers
from producer_api.guard import install_guard
from producer_api.ingress import Ingress
from producer_api.multipart import FastFormDataParser
from producer_api.view_watch import ViewWatch
from vocabulary.webhook_secrets import WebhookSecrets


class UploadRequest(Request):
    """Uploads stay in memory (bounded by MAX_UPLOAD_BYTES) instead of spilling to a temp file past 500 KB,
    and multipart bodies go to the faster parser."""

    form_data_parser_class = FastFormDataParser

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()


def _whole_body(response: Response) -> Response:
    """A body already in memory goes to the server as one list, not through an iterator.

    granian sends a list in one piece; an iterator it walks chunk by chunk from
    Rust, taking the GIL each time. Streamed results are left as they are.
    """
    if response.is_sequence:
        response.direct_passthrough = True
    return response


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__, static_folder=None)
    app.request_class = UploadRequest
    # Larger bodies get a JSON 413 before they are read.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["ingress"] = Ingress(settings)
    app.extensions["view_watch"] = ViewWatch(settings.view_path)
    app.extensions["openapi"] = openapi.document(settings)
    # Parsed once: a malformed WEBHOOK_SECRETS stops the start, not a request.
    app.extensions["webhook_secrets"] = WebhookSecrets.from_settings(settings)
    # Parsed once too: a KEY_LANES entry naming an unknown lane stops the start.
    lanes.init_app(app, settings)
    app.config["METRICS_ELSEWHERE"] = bool(settings.api_metrics_port)
    if settings.api_metrics_port and not metrics.serve_shared(settings.api_metrics_port, settings.api_metrics_host):
        app.logger.info(
            "metrics address %s:%s served by another API process", settings.api_metrics_host, settings.api_metrics_port
        )
    register_error_handlers(app)
    install_guard(app)
    cors.init_app(app, settings)
    for blueprint in (images.bp, status.bp, probes.bp, openapi.bp, web.bp):
        app.register_blueprint(blueprint)
    app.after_request(_whole_body)
    if settings.trusted_proxy_hops:
        # Client addresses (rate limits, lane allowances) are the edge's word for them, not the edge's own.
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    return app


def wsgi_app() -> Flask:
    """The app as the server (granian --factory) serves it: settings and logging from the environment."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    heap.limit_arenas()  # before the server's threads allocate: see common/heap.py
    app = create_app(settings)
    atexit.register(app.extensions["ingress"].close)
    return app
