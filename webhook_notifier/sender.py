"""One webhook delivered with retries: POST to a checked address, back off, give up in the end."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3

from common import metrics
from schemas.webhook import EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from webhook_notifier.policy import CallbackPolicy, CallbackRefused, CallbackTarget, check

log = logging.getLogger(__name__)

DELIVERED, REJECTED, GAVE_UP, REFUSED, INTERRUPTED = "delivered", "rejected", "gave_up", "refused", "interrupted"
# The receiver's answers worth trying again; any other 4xx is its final word.
_RETRIABLE_4XX = {408, 425, 429}


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    timeout_seconds: float = 5.0

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


class Sender:
    def __init__(self, secret: str, policy: CallbackPolicy, retry: RetryPolicy, user_agent: str) -> None:
        self.secret = secret
        self.policy = policy
        self.retry = retry
        self.user_agent = user_agent

    def deliver(self, url: str, event_id: str, task_id: str, body: bytes, stop: threading.Event) -> str:
        """The final outcome: delivered, rejected, gave_up, refused, or interrupted by `stop`."""
        failed = 0
        while True:
            try:
                # Resolved and checked again on every attempt: addresses change.
                target = check(url, self.policy)
            except CallbackRefused as e:
                log.warning("webhook refused: %s", e, extra={"task_id": task_id})
                return REFUSED
            headers = {
                "Content-Type": "application/json",
                "User-Agent": self.user_agent,
                SIGNATURE_HEADER: sign(self.secret, body),
                EVENT_ID_HEADER: event_id,
            }
            started = time.monotonic()
            metrics.WEBHOOK_ATTEMPTS.inc()
            try:
                status = post(target, body, headers, self.retry.timeout_seconds)
                problem = f"HTTP {status}"
            except (urllib3.exceptions.HTTPError, OSError) as e:
                status, problem = 0, f"{type(e).__name__}: {e}"
            metrics.WEBHOOK_SECONDS.observe(time.monotonic() - started)
            if 200 <= status < 300:
                return DELIVERED
            if 400 <= status < 500 and status not in _RETRIABLE_4XX:
                log.warning("webhook rejected: %s", problem, extra={"task_id": task_id})
                return REJECTED
            failed += 1
            if failed >= self.retry.max_attempts:
                log.warning("webhook gave up after %d attempts: %s", failed, problem, extra={"task_id": task_id})
                return GAVE_UP
            delay = self.retry.delay(failed)
            log.info(
                "webhook attempt %d failed (%s); again in %.1fs", failed, problem, delay, extra={"task_id": task_id}
            )
            if stop.wait(delay):
                return INTERRUPTED
