"""Webhook signatures: how the service signs an outcome POST, and how a receiver checks it.

The header is `X-Imgresize-Signature: t=<unix seconds>,v1=<hex>` where the hex
is HMAC-SHA256(secret, "<t>." + body). Signing the time with the body lets a
receiver refuse a replayed POST older than its tolerance; the body holds the
event id, so it is signed too.

While a secret is rotated, two are valid at once: the header then carries one
`v1=` per secret (the newest first), and a receiver holding either accepts it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

SIGNATURE_HEADER = "X-Imgresize-Signature"
EVENT_ID_HEADER = "X-Imgresize-Event-Id"
DEFAULT_TOLERANCE_SECONDS = 300


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secrets: str | Sequence[str], body: bytes, timestamp: int | None = None) -> str:
    """The signature header value for `body`: one `v1=` per secret."""
    t = int(time.time()) if timestamp is None else timestamp
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    if not keys:
        raise ValueError("no secret to sign with")
    return ",".join([f"t={t}", *(f"v1={_digest(key, t, body)}" for key in keys)])


def verify(
    secret: str,
    body: bytes,
    header: str,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True if one of the header's signatures signs exactly `body` with `secret`, made within the tolerance of now."""
    pairs = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [value for name, value in pairs if name.strip() == "t"]
    try:
        (timestamp,) = (int(stamp) for stamp in stamps)
    except ValueError:  # none, several, or not a number
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = _digest(secret, timestamp, body).encode()
    # As bytes: compare_digest refuses str with characters outside ASCII, and a header may hold any.
    presented = [value.encode("utf-8", "replace") for name, value in pairs if name.strip() == "v1"]
    return any([hmac.compare_digest(candidate, expected) for candidate in presented])
