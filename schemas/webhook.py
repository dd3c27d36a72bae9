"""Webhook signatures: how the service signs an outcome POST, and how a receiver checks it.

The header is `X-Imgresize-Signature: t=<unix seconds>,v1=<hex>` where the hex
is HMAC-SHA256(secret, "<t>." + body). Signing the time with the body lets a
receiver refuse a replayed POST older than its tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Imgresize-Signature"
EVENT_ID_HEADER = "X-Imgresize-Event-Id"
DEFAULT_TOLERANCE_SECONDS = 300


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value for `body`."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_digest(secret, t, body)}"


def verify(
    secret: str,
    body: bytes,
    header: str,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True if `header` signs exactly `body` with `secret`, made within the tolerance of now."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    # As bytes: compare_digest refuses str with characters outside ASCII, and a header may hold any.
    presented = parts.get("v1", "").encode("utf-8", "replace")
    return hmac.compare_digest(presented, _digest(secret, timestamp, body).encode())
