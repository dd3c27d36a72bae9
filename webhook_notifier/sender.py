"""One webhook attempt: check the URL, sign the body, POST to the checked address."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import certifi
import urllib3

from common import metrics
from common.backoff import exponential
from schemas.webhook import EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from vocabulary.callback_policy import CallbackPolicy, CallbackRefused, CallbackTarget, check

DELIVERED, REJECTED, REFUSED, FAILED, GAVE_UP = "delivered", "rejected", "refused", "failed", "gave_up"
# Of a receiver's answer only the status matters: at most this much of the body is read.
MAX_RESPONSE_BYTES = 64 * 1024
_READ_CHUNK = 8 * 1024
# Characters kept as they are in the request target; anything else (non-ASCII) is percent-encoded.
_PATH_SAFE = "/?&=%:@!$'()*+,;~-._"
# The receiver's answers worth trying again; any other 4xx is its final word.
_RETRIABLE_4XX = {408, 425, 429}


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 60.0

    def delay(self, failed_attempts: int) -> float:
        """Exponential: 1, 2, 4, ... times the base, capped."""
        return exponential(failed_attempts, self.backoff_seconds, self.backoff_max_seconds)


class ConnectionPools:
    """Kept-alive connections per checked address, so receivers are not re-dialled (and re-handshaken) each time.

    A pool is bound to one IP address and one name: reusing it never reaches
    an address the policy has not just approved.
    """

    def __init__(self, per_address: int, limit: int = 256) -> None:
        self.per_address = per_address
        self.limit = limit
        self._pools: OrderedDict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = OrderedDict()
        self._lock = threading.Lock()

    def _new(self, target: CallbackTarget, address: str) -> urllib3.HTTPConnectionPool:
        if target.scheme == "https":
            return urllib3.HTTPSConnectionPool(
                address,
                target.port,
                maxsize=self.per_address,
                server_hostname=target.host,
                assert_hostname=target.host,
                cert_reqs="CERT_REQUIRED",
                ca_certs=certifi.where(),
            )
        return urllib3.HTTPConnectionPool(address, target.port, maxsize=self.per_address)

    def pool_for(self, target: CallbackTarget) -> urllib3.HTTPConnectionPool:
        address = target.addresses[0]
        key = (target.scheme, address, target.port, target.host)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = self._new(target, address)
                if len(self._pools) > self.limit:
                    self._pools.popitem(last=False)[1].close()
            self._pools.move_to_end(key)
            return pool

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


def post(
    pool: urllib3.HTTPConnectionPool, target: CallbackTarget, body: bytes, headers: dict[str, str], timeout: float
) -> int:
    """POST to the address the policy checked, never to whatever the name resolves to next.

    The connection goes to that IP; Host, SNI and the certificate check use the
    name. Redirects are not followed: they could point anywhere.
    """
    parts = urlsplit(target.url)
    path = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=_PATH_SAFE)
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    deadline = time.monotonic() + timeout
    response = pool.urlopen(
        "POST",
        path,
        body=body,
        headers={**headers, "Host": host_header},
        redirect=False,
        retries=False,
        timeout=urllib3.Timeout(total=timeout),
        preload_content=False,
    )
    try:
        _read_capped(response, deadline)
    finally:
        # A body left unread makes the connection unusable: close it rather than pool it.
        response.close()
        response.release_conn()
    return int(response.status)


def _read_capped(response: urllib3.BaseHTTPResponse, deadline: float) -> None:
    """Read (and drop) at most MAX_RESPONSE_BYTES, within the attempt's deadline: a receiver answering
    with a huge body costs no memory, and one trickling it cannot hold the attempt past the timeout."""
    received = 0
    while received < MAX_RESPONSE_BYTES and time.monotonic() < deadline:
        chunk = response.read1(_READ_CHUNK, decode_content=False)  # what has arrived, not a full chunk
        if not chunk:
            return
        received += len(chunk)


@dataclass(frozen=True)
class Attempt:
    outcome: str  # delivered, rejected, refused or failed (worth another try)
    problem: str = ""


class Sender:
    """One signed POST at a time; when to try again is the notifier's business."""

    def __init__(self, policy: CallbackPolicy, timeout_seconds: float, user_agent: str, concurrency: int = 8) -> None:
        self.pools = ConnectionPools(per_address=concurrency)
        self.policy = policy
        self.timeout_seconds = timeout_seconds
        self.user_agent = user_agent

    def attempt(self, url: str, event_id: str, body: bytes, secrets: tuple[str, ...]) -> Attempt:
        """POST `body` to `url`, signed with each of `secrets` (the task's API key's, or the shared one)."""
        if not secrets:
            return Attempt(REFUSED, "no webhook secret for this task's API key: it cannot be signed")
        try:
            # Resolved and checked on every attempt: addresses change.
            target = check(url, self.policy)
        except CallbackRefused as e:
            return Attempt(REFUSED, str(e))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self.user_agent,
            SIGNATURE_HEADER: sign(secrets, body),
            EVENT_ID_HEADER: event_id,
        }
        started = time.monotonic()
        metrics.WEBHOOK_ATTEMPTS.inc()
        try:
            status = post(self.pools.pool_for(target), target, body, headers, self.timeout_seconds)
        except Exception as e:  # noqa: BLE001 - no answer of a receiver may end the notifier: try again later
            return Attempt(FAILED, f"{type(e).__name__}: {e}")
        finally:
            metrics.WEBHOOK_SECONDS.observe(time.monotonic() - started)
        if 200 <= status < 300:
            return Attempt(DELIVERED)
        if 400 <= status < 500 and status not in _RETRIABLE_4XX:
            return Attempt(REJECTED, f"HTTP {status}")
        return Attempt(FAILED, f"HTTP {status}")
