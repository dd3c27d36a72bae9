"""The OpenAPI 3.1 description of the HTTP API, served at /openapi.json and rendered at /docs.

The routes and answers are written here next to them; the upload form's schema
is generated from the pydantic model that validates it (producer_api/form.py).
A test checks that the document names exactly the routes the app has, and
schemathesis checks the answers against it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import html
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from common.settings import Settings
from common.version import service_version
from producer_api.bodies import component_schemas
from producer_api.form import form_schema

bp = Blueprint("openapi", __name__)

_ERROR = {"$ref": "#/components/schemas/Error"}
_TASK_ID = {
    "name": "task_id",
    "in": "path",
    "required": True,
    "description": "The task id a 202 returned (a UUID; anything else is a 404).",
    "schema": {"type": "string"},
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _errors(*statuses: int) -> dict[str, Any]:
    known = {
        401: "No API key (when keys are required)",
        403: "Unknown API key",
        404: "Unknown task, non-UUID id, result not ready, or task failed",
        410: "The task expired (code expired: past RESULT_TTL_SECONDS) or was deleted (code deleted)",
        413: "Body larger than the upload limit",
        422: "Invalid input",
        429: "Rate limit exceeded; see Retry-After",
        503: "Kafka, the object store or the status view unavailable; see Retry-After",
    }
    return {str(status): _error(known[status]) for status in statuses}


_REDIRECT = {
    "name": "redirect",
    "in": "query",
    "required": False,
    "description": "1: redirect to a presigned URL of the object store instead.",
    "schema": {"enum": ["0", "1", "true", "false"]},
}


_WAIT_FOR_CHANGE = {
    "name": "wait",
    "in": "query",
    "required": False,
    "description": "Long-poll: answer as soon as the state changes, or after this many seconds.",
    "schema": {"type": "number", "minimum": 0},  # maximum: MAX_STATUS_WAIT_SECONDS, set by document()
}
_WAIT_FOR_RESULT = {
    **_WAIT_FOR_CHANGE,
    "description": "Long-poll: answer with the image as soon as the task succeeds (or fails: 404), "
    "or after this many seconds (404 result_not_ready).",
}


def _image_responses() -> dict[str, Any]:
    """What a result endpoint answers."""
    return {
        "200": {
            "description": "The image, with ETag and Content-Length",
            "content": {
                ct: {"schema": {"type": "string", "format": "binary"}}
                for ct in ("image/jpeg", "image/png", "image/webp", "image/gif", "image/avif")
            },
        },
        "302": {"description": "Redirect to a presigned URL (redirect=1)"},
        "304": {"description": "Not modified (If-None-Match matched the ETag)"},
        **_errors(401, 403, 404, 410, 422, 429, 503),
    }


SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "imgresize",
        "version": service_version(),
        "description": (
            "Event-driven image resizing. Uploads are accepted (202) once the request event is in Kafka; "
            "workers resize; the status and result endpoints read a view folded from the events. "
            "Browsers on other origins may call /api/* (CORS, CORS_ALLOWED_ORIGINS; any origin by default): "
            "credentials are the X-API-Key or Authorization header, never cookies."
        ),
    },
    "components": {
        "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        # Generated from the typed bodies the routes build (producer_api/bodies.py).
        "schemas": component_schemas(),
    },
    "security": [{"apiKey": []}, {}],
    "paths": {
        "/api/v1/images/resize": {
            "post": {
                "summary": "Upload an image to resize",
                "operationId": "submitResize",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "Same key and body: the same task, no second event. Other body: 422.",
                        "schema": {"type": "string", "maxLength": 255},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        # Generated from the form model (producer_api/form.py) by document().
                        "multipart/form-data": {"schema": {}}
                    },
                },
                "responses": {
                    "202": {
                        "description": "Accepted: the request event is in Kafka",
                        "headers": {
                            "Location": {"schema": {"type": "string"}},
                            "Lane": {
                                "description": "The lane the task was queued in (see the priority field)",
                                "schema": {"type": "string"},
                            },
                        },
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
                    },
                    **_errors(401, 403, 413, 422, 429, 503),
                    "400": _error("Malformed request"),
                },
            }
        },
        "/api/v1/status/{task_id}": {
            "get": {
                "summary": "A task's status",
                "operationId": "taskStatus",
                "parameters": [
                    _TASK_ID,
                    _WAIT_FOR_CHANGE,
                ],
                "responses": {
                    "200": {
                        "description": "The task",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}},
                    },
                    **_errors(401, 403, 404, 410, 422, 429, 503),
                },
            }
        },
        "/api/v1/images/{task_id}": {
            "delete": {
                "summary": "Delete a task: its original, results and variants leave the store; its status answers 410",
                "operationId": "deleteTask",
                "parameters": [_TASK_ID],
                "responses": {
                    "204": {"description": "Deleted, and every object of the task erased"},
                    "202": {
                        "description": "Deleted; the store did not answer, so its objects are erased shortly by "
                        "the janitor",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Deleting"}}},
                    },
                    **_errors(401, 403, 404, 429, 503),
                },
            }
        },
        "/api/v1/images/result/{task_id}": {
            "get": {
                "summary": "The resized image, as often as asked",
                "operationId": "taskResult",
                "parameters": [
                    _TASK_ID,
                    _REDIRECT,
                    _WAIT_FOR_RESULT,
                ],
                "responses": _image_responses(),
            }
        },
        "/api/v1/images/result/{task_id}/{variant}": {
            "get": {
                "summary": "One named variant's resized image",
                "operationId": "variantResult",
                "parameters": [
                    _TASK_ID,
                    {
                        "name": "variant",
                        "in": "path",
                        "required": True,
                        "description": "A variant's name, as the request's sizes or variants named it.",
                        "schema": {"type": "string"},
                    },
                    _REDIRECT,
                    _WAIT_FOR_RESULT,
                ],
                "responses": _image_responses(),
            }
        },
        "/": {
            "get": {
                "summary": "The web page: drop images, pick size, mode and format, watch jobs, download results",
                "operationId": "webPage",
                "security": [],
                "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {}}}}},
            }
        },
        "/ui/{asset}": {
            "get": {
                "summary": "The web page's script and style sheet",
                "operationId": "webAsset",
                "security": [],
                "parameters": [
                    {
                        "name": "asset",
                        "in": "path",
                        "required": True,
                        "description": "The page's script or style sheet.",
                        "schema": {"enum": ["app.js", "app.css"]},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The asset",
                        "content": {"text/javascript": {"schema": {}}, "text/css": {"schema": {}}},
                    },
                    **_errors(404),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "operationId": "healthz",
                "security": [],
                "responses": {"200": {"description": "Alive", "content": {"application/json": {"schema": {}}}}},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: Kafka, the bucket, the view's lag",
                "operationId": "readyz",
                "security": [],
                "responses": {
                    "200": {"description": "Ready", "content": {"application/json": {"schema": {}}}},
                    "503": _error("Not ready; message says which check failed"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "operationId": "metrics",
                "security": [],
                "responses": {"200": {"description": "Text exposition", "content": {"text/plain": {"schema": {}}}}},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {}}}}},
            }
        },
        "/docs": {
            "get": {
                "summary": "This document as a page",
                "operationId": "docs",
                "security": [],
                "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {}}}}},
            }
        },
    },
}


def document(settings: Settings) -> dict[str, Any]:
    """SPEC with this service's limits: the upload form's schema generated from the model that validates it."""
    spec = copy.deepcopy(SPEC)
    upload = spec["paths"]["/api/v1/images/resize"]["post"]["requestBody"]["content"]["multipart/form-data"]
    upload["schema"] = form_schema(settings.max_dimension)
    for operations in spec["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("name") == "wait":
                    parameter["schema"] = {**parameter["schema"], "maximum": settings.max_status_wait_seconds}
    return spec


def _document() -> dict[str, Any]:
    return current_app.extensions["openapi"]  # type: ignore[no-any-return]


@bp.get("/openapi.json", endpoint="openapi")
def openapi_document() -> Response:
    return jsonify(_document())


@bp.get("/docs", endpoint="docs")
def docs_page() -> Response:
    """The routes, their parameters and answers, on one plain page (no scripts, no CDN)."""
    spec = _document()
    parts = [f"<h1>{html.escape(spec['info']['title'])} API</h1><p>{html.escape(spec['info']['description'])}</p>"]
    parts.append('<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>')
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            parts.append(
                f"<h2><code>{method.upper()} {html.escape(path)}</code></h2><p>{html.escape(operation['summary'])}</p>"
            )
            params = operation.get("parameters", [])
            if params:
                rows = "".join(
                    f"<li><code>{html.escape(p['name'])}</code> ({p['in']}): "
                    f"{html.escape(p.get('description', ''))}</li>"
                    for p in params
                )
                parts.append(f"<ul>{rows}</ul>")
            answers = "".join(
                f"<li><b>{status}</b> {html.escape(response['description'])}</li>"
                for status, response in operation["responses"].items()
            )
            parts.append(f"<ul>{answers}</ul>")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>imgresize API</title>"
        f"<style>{_DOCS_STYLE}</style></head><body>" + "".join(parts) + "</body></html>"
    )
    response = Response(page, content_type="text/html; charset=utf-8")
    # The page's one inline style, allowed by its hash; nothing else runs or loads.
    response.headers["Content-Security-Policy"] = _DOCS_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


_DOCS_STYLE = "".join(
    (
        "body{font-family:sans-serif;max-width:60rem;margin:2rem auto;line-height:1.4}",
        "code{background:#f3f3f3;padding:0 .2rem}",
    )
)
_DOCS_POLICY = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(_DOCS_STYLE.encode()).digest()).decode()
    + "'; frame-ancestors 'none'"
)
