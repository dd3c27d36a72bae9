"""Around every request: who is calling, whether they may, and what it cost (metrics)."""

from __future__ import annotations

import time

from flask import Flask, Request, Response, g, request

from common import metrics
from producer_api.auth import authenticate, parse_keys
from producer_api.errors import ApiError
from producer_api.rate_limit import LongPollSlots, TokenBuckets

# Endpoints anyone may call: probes, metrics, the API description.
# The page and its assets are public; the API calls it makes carry the key the user types.
OPEN_ENDPOINTS = {
    "probes.healthz",
    "probes.readyz",
    "probes.metrics",
    "openapi.openapi",
    "openapi.docs",
    "web.index",
    "web.asset",
}


_STARTED = "imgresize.started"
_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}


def install_guard(app: Flask) -> None:
    settings = app.extensions["ingress"].settings
    keys = parse_keys(settings.api_keys)
    submissions = TokenBuckets(settings.rate_limit_per_second, settings.rate_limit_burst)
    reads = TokenBuckets(settings.read_rate_limit_per_second, settings.read_rate_limit_burst)
    failed_auth = TokenBuckets(settings.auth_failure_rate_per_second, settings.auth_failure_burst)
    app.extensions["long_polls"] = LongPollSlots(settings.max_long_polls, settings.max_long_polls_per_client)

    def limited(wait: float) -> ApiError:
        return ApiError(429, "rate_limited", "too many requests; slow down", retry_after=max(1, round(wait + 0.5)))

    @app.before_request
    def _guard() -> None:
        # The request object itself, not the proxy: it is read many times on every request.
        req: Request = request._get_current_object()  # type: ignore[attr-defined]
        req.environ[_STARTED] = time.perf_counter()
        if req.endpoint in OPEN_ENDPOINTS or req.endpoint is None:
            return
        if req.method == "OPTIONS":
            # A browser's CORS preflight carries no credentials by design; it reads nothing and
            # changes nothing (Flask answers it), and the request it announces is checked in full.
            return
        headers = req.headers
        presented = {name: headers.get(name, "") for name in ("X-API-Key", "Authorization")}
        verdict = authenticate(presented, keys, settings.auth_required)
        if verdict.status != 200:
            # Guessing keys costs a budget too.
            wait = failed_auth.take(f"addr:{req.remote_addr}")
            if wait > 0:
                raise limited(wait)
            raise ApiError(verdict.status, verdict.code, verdict.message)
        # The key's name (None without one) owns tasks; budgets fall back to the address.
        identity = verdict.client or f"addr:{req.remote_addr}"
        g.client = verdict.client
        g.identity = identity
        budget = submissions if req.method in ("POST", "DELETE") else reads
        wait = budget.take(identity)
        if wait > 0:
            raise limited(wait)

    @app.after_request
    def _measure(response: Response) -> Response:
        req: Request = request._get_current_object()  # type: ignore[attr-defined]
        # Fixed label sets: a client inventing paths or methods must not create series.
        route = req.url_rule.rule if req.url_rule else "unmatched"
        method = req.method if req.method in _METHODS else "other"
        metrics.HTTP_REQUESTS.labels(route, method, str(response.status_code)).inc()
        started = req.environ.get(_STARTED)
        if started is not None:
            metrics.HTTP_SECONDS.labels(route).observe(time.perf_counter() - started)
        return response
