"""The edge (nginx) in front of the API as `make up` runs them: malformed HTTP, slow and hostile clients."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import selectors
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench import procstat
from local_infra.edge import EdgeConfig, start_edge
from local_infra.process import ManagedProcess, free_port, port_open, wait_until
from local_infra.stack import Infrastructure
from local_infra.up import roles
from producer_api.auth import new_key
from tests.conftest import settings_on
from tests.pipeline import Pipeline, jpeg_bytes, start_pipeline

pytestmark = pytest.mark.e2e

BLOCKING_THREADS = 32
# Long enough to see every header dripper cut off (client_header_timeout 10 s, and slack).
ATTACK_SECONDS = 16.0


@dataclass
class Edged:
    pipeline: Pipeline
    port: int
    api_pid: int


@contextlib.contextmanager
def _edged(pipeline: Pipeline, tmp_path: Path) -> Iterator[Edged]:
    """The pipeline's API under granian, as `make up` starts it, behind the edge."""
    env = {**os.environ, **pipeline.settings.as_env(), "TRUSTED_PROXY_HOPS": "1"}
    api_port, edge_port = free_port(), free_port()
    api = next(role for role in roles(env, [], api_port, 1, tmp_path) if role.name == "api")
    server = ManagedProcess("api", api.argv, tmp_path / "api.log", env=api.env)
    edge = None
    try:
        wait_until(lambda: port_open(api_port), 30, "API server", server)
        config = EdgeConfig(edge_port, api_port, pipeline.settings.max_upload_bytes, tmp_path / "edge")
        edge = start_edge(config)
        yield Edged(pipeline, edge_port, server.pid)
    finally:
        if edge is not None:
            edge.stop()
        server.stop()


@pytest.fixture(scope="module")
def edged(infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edged]:
    """One edged pipeline for the module's tests, which only send requests and read answers
    (each malformed case's own pipeline and edge took 2.3 s to start)."""
    tmp = tmp_path_factory.mktemp("edged")
    settings = settings_on(infrastructure, tmp / "view.sqlite3", max_upload_bytes=2 * 1024 * 1024)
    started: list[Pipeline] = []
    try:
        with _edged(start_pipeline(settings, started), tmp) as running:
            yield running
    finally:
        for pipeline in started:
            pipeline.shutdown()


def _multipart(fields: dict[str, bytes], image: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + image
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _upload(fields: dict[str, bytes], image: bytes | None = None) -> bytes:
    body, content_type = _multipart(fields, image or jpeg_bytes(40, 30))
    head = (
        f"POST /api/v1/images/resize HTTP/1.1\r\nHost: edge\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def _exchange(port: int, raw: bytes) -> tuple[int, bytes]:
    """Send raw bytes, read until the server closes: (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(raw)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.") else 0
    return status, body


DEEP = b"[" * 5000 + b"]" * 5000
POST = b"POST /api/v1/images/resize HTTP/1.1\r\nHost: e\r\n"
GET = b"GET /healthz HTTP/1.1\r\nHost: e\r\n"
MALFORMED = {
    "request line is not HTTP": (b"GARBAGE\r\n\r\n", 400),
    "control character in the method": (b"G\x01T /healthz HTTP/1.1\r\nHost: e\r\n\r\n", 400),
    "HTTP/9.9": (b"GET /healthz HTTP/9.9\r\nHost: e\r\n\r\n", 505),
    "HTTP/1.1 without Host": (b"GET /healthz HTTP/1.1\r\n\r\n", 400),
    "two Host headers": (b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "NUL in a header": (b"GET /healthz HTTP/1.1\r\nHost: e\r\nX-A: a\x00b\r\n\r\n", 400),
    "a 100 kB URL": (b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: e\r\n\r\n", 414),
    "a 1 MB header": (b"GET /healthz HTTP/1.1\r\nHost: e\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n", 431),
    "headers over 32 kB in all": (
        b"GET /healthz HTTP/1.1\r\nHost: e\r\n"
        + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 7000) for i in range(6))
        + b"\r\n",
        431,
    ),
    "Content-Length not a number": (
        POST + b"Content-Length: ab\r\n\r\n",
        400,
    ),
    "negative Content-Length": (POST + b"Content-Length: -1\r\n\r\n", 400),
    "Content-Length and chunked": (
        POST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "a chunk size that is not hex": (
        b"POST /api/v1/images/resize HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    "a chunk size past 64 bits": (
        b"POST /api/v1/images/resize HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"F" * 20
        + b"\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    "an unknown transfer coding": (
        b"POST /api/v1/images/resize HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    ),
    "a body over MAX_UPLOAD_BYTES": (
        b"POST /api/v1/images/resize HTTP/1.1\r\nHost: e\r\nContent-Length: 3000000\r\n\r\n" + b"a" * 100_000,
        413,
    ),
    "raw non-ASCII bytes in the URL": (b"GET /api/v1/status/\xff\xfe HTTP/1.1\r\nHost: e\r\n\r\n", 400),
    "%-encoded non-UTF-8 in the URL": (
        b"GET /api/v1/status/%FF%FE HTTP/1.1\r\nHost: e\r\nConnection: close\r\n\r\n",
        404,
    ),
    "non-UTF-8 bytes in a form field": (_upload({"width": b"\xff\xfe"}), 422),
    "variants nested 5,000 deep": (_upload({"variants": DEEP}), 422),
    "variants of 100 kB": (_upload({"variants": b'[{"name":"' + b"a" * 100_000 + b'"}]'}), 422),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_every_malformed_request_gets_a_json_error_with_a_code(edged: Edged, case: str) -> None:
    raw, expected = MALFORMED[case]
    status, body = _exchange(edged.port, raw)
    assert status == expected, body[:300]
    answer = json.loads(body)
    assert answer["result"] == "error" and answer["code"], answer


def test_an_upload_through_the_edge_is_served_and_the_client_address_is_the_edges_word(edged: Edged) -> None:
    status, body = _exchange(edged.port, _upload({"width": b"20"}))
    assert status == 202, body
    task_id = json.loads(body)["task_id"]
    status, body = _exchange(
        edged.port, f"GET /api/v1/status/{task_id}?wait=20 HTTP/1.1\r\nHost: e\r\nConnection: close\r\n\r\n".encode()
    )
    assert status == 200 and json.loads(body)["status"] in {"STARTED", "SUCCESS"}


def test_not_yours_and_does_not_exist_take_the_same_time(pipeline_factory: Callable[..., Pipeline]) -> None:
    """Measured in-process (no edge), so that the API's own work is what is compared."""
    owner_key, owner = new_key("owner")
    other_key, other = new_key("other")
    pipeline = pipeline_factory(workers=0, api_keys=f"{owner},{other}", auth_required=True)
    base = pipeline.base_url.removeprefix("http://")
    host, port = base.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    files = {"file": ("a.jpg", jpeg_bytes(40, 30))}
    import requests

    task_id = requests.post(
        pipeline.url("/api/v1/images/resize"), files=files, data={"width": "20"}, headers={"X-API-Key": owner_key}
    ).json()["task_id"]

    def timed(path: str) -> float:
        started = time.perf_counter()
        connection.request("GET", path, headers={"X-API-Key": other_key})
        response = connection.getresponse()
        response.read()
        assert response.status == 404
        return time.perf_counter() - started

    not_yours, unknown = [], []
    for _ in range(200):
        not_yours.append(timed(f"/api/v1/status/{task_id}"))
        unknown.append(timed(f"/api/v1/status/{uuid.uuid4()}"))
    gap = abs(statistics.median(not_yours) - statistics.median(unknown)) * 1000
    print(
        f"median 404: not yours {statistics.median(not_yours) * 1000:.2f} ms, "
        f"does not exist {statistics.median(unknown) * 1000:.2f} ms, gap {gap:.2f} ms"
    )
    assert gap < 0.5


@dataclass
class SlowClient:
    sock: socket.socket
    opened: float
    drip: bytes
    closed: float | None = None


@dataclass
class Attack:
    """Slow senders: each declares a body it sends 100 bytes a second; drippers send their header a byte a second."""

    port: int
    body_senders: int
    header_drippers: int
    clients: list[SlowClient] = field(default_factory=list)

    def open(self) -> None:
        addresses = [f"127.0.{1 + i // 250}.{1 + i % 250}" for i in range(40)]
        for i in range(self.body_senders + self.header_drippers):
            sock = socket.socket()
            sock.bind((addresses[i % len(addresses)], 0))
            sock.connect(("127.0.0.1", self.port))
            sock.setblocking(False)
            if i < self.body_senders:
                sock.send(
                    b"POST /api/v1/images/resize HTTP/1.1\r\nHost: e\r\nContent-Type: multipart/form-data; "
                    b"boundary=x\r\nContent-Length: 20000000\r\n\r\n"
                )
                drip = b"a" * 100
            else:
                sock.send(b"GET /healthz HTTP/1.1\r\nHost: e\r\nX-Slow: ")
                drip = b"a"
            self.clients.append(SlowClient(sock, time.monotonic(), drip))

    def run(self, seconds: float) -> None:
        selector = selectors.DefaultSelector()
        for client in self.clients:
            selector.register(client.sock, selectors.EVENT_READ, client)
        deadline, next_drip = time.monotonic() + seconds, 0.0
        while time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.1):
                client = key.data
                try:
                    data = client.sock.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    client.closed = time.monotonic()
                    selector.unregister(client.sock)
            if time.monotonic() >= next_drip:
                next_drip = time.monotonic() + 1.0
                for client in self.clients:
                    if client.closed is None:
                        with contextlib.suppress(OSError):
                            client.sock.send(client.drip)
        selector.close()

    def close(self) -> None:
        for client in self.clients:
            client.sock.close()


def _probe(port: int, method: str, path: str, body: bytes = b"", content_type: str = "") -> float:
    """One request on a fresh connection from another address; seconds until the whole answer."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=("127.0.0.2", 0))
    headers = {"Content-Type": content_type} if content_type else {}
    connection.request(method, path, body=body or None, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status in (200, 202), response.status
    return time.perf_counter() - started


def _threads(pid: int) -> int:
    """Threads of the API server and its worker processes."""
    return sum(len(os.listdir(f"/proc/{member}/task")) for member in procstat.tree(pid))


def test_slow_and_hostile_clients_cost_the_api_nothing(
    pipeline_factory: Callable[..., Pipeline], tmp_path: Path
) -> None:
    # The default upload limit (25 MiB): the slow senders' 20 MB bodies are allowed, only slow.
    with _edged(pipeline_factory(workers=1), tmp_path) as edged:
        _slow_and_hostile_clients(edged)


def _slow_and_hostile_clients(edged: Edged) -> None:
    upload, content_type = _multipart({"width": b"20"}, jpeg_bytes(60, 40))
    idle = [_probe(edged.port, "POST", "/api/v1/images/resize", upload, content_type) for _ in range(20)]
    idle_threads = _threads(edged.api_pid)

    attack = Attack(edged.port, body_senders=500, header_drippers=200)
    attack.open()
    runner = threading.Thread(target=attack.run, args=(ATTACK_SECONDS,))
    runner.start()
    healthz, uploads, threads = [], [], []
    try:
        while runner.is_alive():
            healthz.append(_probe(edged.port, "GET", "/healthz"))
            if len(healthz) % 5 == 0:
                uploads.append(_probe(edged.port, "POST", "/api/v1/images/resize", upload, content_type))
            threads.append(_threads(edged.api_pid))
            time.sleep(0.1)
    finally:
        runner.join()
        attack.close()

    def p99(values: list[float]) -> float:
        return sorted(values)[int(0.99 * (len(values) - 1))]

    drippers = attack.clients[attack.body_senders :]
    senders = attack.clients[: attack.body_senders]
    closed_in = [c.closed - c.opened for c in drippers if c.closed is not None]
    print(
        f"healthz p99 {p99(healthz) * 1000:.1f} ms (n={len(healthz)}); upload p99 {p99(uploads) * 1000:.1f} ms "
        f"(idle {p99(idle) * 1000:.1f} ms); API threads {idle_threads} idle, at most {max(threads)}; "
        f"header drippers closed after {min(closed_in):.1f}-{max(closed_in):.1f} s; "
        f"body senders still open after {ATTACK_SECONDS:.0f} s: "
        f"{sum(c.closed is None for c in senders)} of {len(senders)}"
    )
    assert p99(healthz) <= 0.100
    assert p99(uploads) <= 3 * max(p99(idle), 0.010)
    assert len(closed_in) == len(drippers) and max(closed_in) <= 10 + 3  # client_header_timeout, and slack
    assert max(threads) < idle_threads + BLOCKING_THREADS
