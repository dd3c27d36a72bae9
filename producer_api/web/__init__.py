"""The web page at `/`: plain HTML, CSS and a little JavaScript over the public HTTP API."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from producer_api.errors import ApiError

bp = Blueprint("web", __name__)
_ASSETS = Path(__file__).parent
_SERVED = {"app.js", "app.css"}
# The page runs only its own script and shows images it fetched itself (blob: URLs).
_POLICY = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"


def _send(name: str) -> Response:
    response = send_from_directory(_ASSETS, name, max_age=300)
    response.headers["Content-Security-Policy"] = _POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/")
def index() -> Response:
    return _send("index.html")


@bp.get("/ui/<asset>")
def asset(asset: str) -> Response:
    if asset not in _SERVED:
        raise ApiError(404, "not_found", f"no asset {asset!r}")
    return _send(asset)
