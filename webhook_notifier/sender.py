"""One webhook attempt: check the URL, sign the body, POST to the checked address."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3

from common import metrics
from schemas.webhook import EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from webhook_notifier.policy import CallbackPolicy, CallbackRefused, CallbackTarget, check

DELIVERED, REJECTED, REFUSED, FAILED, GAVE_UP = "delivered", "rejected", "refused", "failed", "gave_up"
# The receiver's answers worth trying again; any other 4xx is its final word.
_RETRIABLE_4XX = {408, 425, 429}


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 60.0

    def delay(self, failed_attempts: int) -> float:
        """Exponential: 1, 2, 4, ... times the base, capped."""
        return float(min(self.backoff_seconds * 2 ** (failed_attempts - 1), self.backoff_max_seconds))


def post(target: CallbackTarget, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST to the address the policy checked, never to whatever the name resolves to next.

    The connection goes to that IP; Host, SNI and the certificate check use the
    name. Redirects are not followed: they could point anywhere.
    """
    address = target.addresses[0]
    parts = urlsplit(target.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            target.port,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, target.port)
    try:
        response = pool.urlopen(
            "POST",
            path,
            body=body,
            headers={**headers, "Host": host_header},
            redirect=False,
            retries=False,
            timeout=urllib3.Timeout(total=timeout),
        )
        return int(response.status)
    finally:
        pool.close()


@dataclass(frozen=True)
class Attempt:
    outcome: str  # delivered, rejected, refused or failed (worth another try)
    problem: str = ""


class Sender:
    """One signed POST at a time; when to try again is the notifier's business."""

    def __init__(self, secret: str, policy: CallbackPolicy, timeout_seconds: float, user_agent: str) -> None:
        self.secret = secret
        self.policy = policy
        self.timeout_seconds = timeout_seconds
        self.user_agent = user_agent

    def attempt(self, url: str, event_id: str, body: bytes) -> Attempt:
        try:
            # Resolved and checked on every attempt: addresses change.
            target = check(url, self.policy)
        except CallbackRefused as e:
            return Attempt(REFUSED, str(e))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self.user_agent,
            SIGNATURE_HEADER: sign(self.secret, body),
            EVENT_ID_HEADER: event_id,
        }
        started = time.monotonic()
        metrics.WEBHOOK_ATTEMPTS.inc()
        try:
            status = post(target, body, headers, self.timeout_seconds)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            return Attempt(FAILED, f"{type(e).__name__}: {e}")
        finally:
            metrics.WEBHOOK_SECONDS.observe(time.monotonic() - started)
        if 200 <= status < 300:
            return Attempt(DELIVERED)
        if 400 <= status < 500 and status not in _RETRIABLE_4XX:
            return Attempt(REJECTED, f"HTTP {status}")
        return Attempt(FAILED, f"HTTP {status}")
