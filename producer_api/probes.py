"""Liveness, readiness and metrics: open endpoints for orchestrators and Prometheus."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from common import metrics
from producer_api.errors import ApiError
from producer_api.lookup import ingress

bp = Blueprint("probes", __name__)


@bp.get("/healthz", endpoint="healthz")
def healthz() -> Response:
    """The process is alive (nothing else is checked)."""
    return jsonify({"status": "ok"})


@bp.get("/readyz", endpoint="readyz")
def readyz() -> tuple[Response, int]:
    """Kafka and the bucket answer, and this host's view is not too far behind the log."""
    checks = ingress().readiness()
    failing = {name: state for name, state in checks.items() if state != "ok"}
    if failing:
        message = "; ".join(f"{name}: {state}" for name, state in failing.items())
        return jsonify({"result": "error", "message": message, "code": "not_ready", "checks": checks}), 503
    return jsonify({"status": "ready", "checks": checks}), 200


@bp.get("/metrics", endpoint="metrics")
def prometheus_metrics() -> Response:
    if current_app.config["METRICS_ELSEWHERE"]:
        # Served on the internal address of API_METRICS_PORT: not for the public.
        raise ApiError(404, "not_found", "no such endpoint")
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)
