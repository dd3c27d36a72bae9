"""The API under the server `make up` runs it with (granian), not the test server: uploads, limits, slow clients."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from local_infra.process import ManagedProcess, free_port, port_open, wait_until
from local_infra.up import roles
from tests.pipeline import Pipeline, jpeg_bytes

pytestmark = pytest.mark.e2e


@contextlib.contextmanager
def _production_server(pipeline: Pipeline, tmp_path: Path, processes: int = 1, **extra_env: str) -> Iterator[str]:
    """The pipeline's API as `make up` starts it: the same argv, in a process of its own."""
    env = {**os.environ, **pipeline.settings.as_env()}
    env.update(extra_env)
    port = free_port()
    api = next(role for role in roles(env, [], port, processes, tmp_path) if role.name == "api")
    server = ManagedProcess("api", api.argv, tmp_path / "api.log", env=api.env)
    try:
        wait_until(lambda: port_open(port), 30, "API server", server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def served(pipeline_factory: Callable[..., Pipeline], tmp_path: Path) -> Iterator[tuple[Pipeline, str]]:
    pipeline = pipeline_factory(workers=1, max_upload_bytes=1024 * 1024)
    with _production_server(pipeline, tmp_path) as base:
        yield pipeline, base


def test_submit_status_and_result_through_the_production_server(served: tuple[Pipeline, str]) -> None:
    _, base = served
    accepted = requests.post(
        f"{base}/api/v1/images/resize", files={"file": ("a.jpg", jpeg_bytes())}, data={"width": "64"}, timeout=30
    )
    assert accepted.status_code == 202, accepted.text
    task_id = accepted.json()["task_id"]
    status = requests.get(f"{base}/api/v1/status/{task_id}?wait=20", timeout=30).json()
    while status["status"] not in {"SUCCESS", "FAILURE"}:
        status = requests.get(f"{base}/api/v1/status/{task_id}?wait=20", timeout=30).json()
    assert status["status"] == "SUCCESS"
    result = requests.get(f"{base}/api/v1/images/result/{task_id}", timeout=30)
    assert result.status_code == 200 and result.headers["Content-Type"] == "image/jpeg"
    assert int(result.headers["Content-Length"]) == len(result.content) > 0


def test_metrics_on_an_internal_address_are_every_api_process_and_not_public(
    pipeline_factory: Callable[..., Pipeline], tmp_path: Path
) -> None:
    pipeline = pipeline_factory(workers=0)
    internal = free_port()
    with _production_server(pipeline, tmp_path, processes=2, API_METRICS_PORT=str(internal)) as base:
        public = requests.get(f"{base}/metrics", timeout=10)
        assert public.status_code == 404 and public.json()["code"] == "not_found"
        for _ in range(40):  # new connections: spread over both processes
            assert requests.get(f"{base}/healthz", timeout=10, headers={"Connection": "close"}).status_code == 200
        wait_until(lambda: port_open(internal), 30, "the internal metrics address")
        text = requests.get(f"http://127.0.0.1:{internal}/metrics", timeout=10).text
    counted = [
        line for line in text.splitlines() if line.startswith("imgresize_http_requests_total") and "healthz" in line
    ]
    # One process serves the address; the count is every process's (they meet in PROMETHEUS_MULTIPROC_DIR).
    assert sum(float(line.rsplit(" ", 1)[1]) for line in counted) == 40, counted


def test_a_client_that_sends_the_whole_body_first_gets_the_413_json(served: tuple[Pipeline, str]) -> None:
    _, base = served
    oversized = b"\xff\xd8\xff" + b"0" * (4 * 1024 * 1024)
    # requests writes the whole body before it reads the answer.
    response = requests.post(
        f"{base}/api/v1/images/resize", files={"file": ("a.jpg", oversized)}, data={"width": "64"}, timeout=30
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_clients_sending_headers_slowly_do_not_hold_up_others(served: tuple[Pipeline, str]) -> None:
    _, base = served
    port = int(base.rsplit(":", 1)[1])
    slow = []
    try:
        for _ in range(150):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
            slow.append(sock)
        started = time.monotonic()
        assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
        assert time.monotonic() - started < 2.0
    finally:
        for sock in slow:
            sock.close()


def _multipart(field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_a_30_mib_upload_from_urllib_and_from_requests_gets_the_413_json(served: tuple[Pipeline, str]) -> None:
    _, base = served
    oversized = b"\xff\xd8\xff" + b"0" * (30 * 1024 * 1024)
    by_requests = requests.post(
        f"{base}/api/v1/images/resize", files={"file": ("a.jpg", oversized)}, data={"width": "64"}, timeout=60
    )
    assert by_requests.status_code == 413 and by_requests.json()["code"] == "payload_too_large"
    body, content_type = _multipart("file", "a.jpg", oversized)
    sent = urllib.request.Request(
        f"{base}/api/v1/images/resize?width=64", data=body, headers={"Content-Type": content_type}, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(sent, timeout=60)
    assert refused.value.code == 413
    assert json.loads(refused.value.read())["code"] == "payload_too_large"


def test_long_polls_and_slow_clients_leave_healthz_answering(
    pipeline_factory: Callable[..., Pipeline], tmp_path: Path
) -> None:
    """100 clients long-polling a task that stays PENDING, 150 sending headers slowly: /healthz within 1 s."""
    pipeline = pipeline_factory(workers=0)
    with _production_server(pipeline, tmp_path) as base:
        accepted = requests.post(
            f"{base}/api/v1/images/resize", files={"file": ("a.jpg", jpeg_bytes())}, data={"width": "8"}, timeout=30
        )
        task_id = accepted.json()["task_id"]
        port = int(base.rsplit(":", 1)[1])
        answers: list[int] = []
        pollers = [
            threading.Thread(
                target=lambda: answers.append(
                    requests.get(f"{base}/api/v1/status/{task_id}?wait=8", timeout=30).status_code
                )
            )
            for _ in range(100)
        ]
        slow = []
        try:
            for poller in pollers:
                poller.start()
            for _ in range(150):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
                slow.append(sock)
            slowest = 0.0
            for _ in range(10):
                started = time.monotonic()
                assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
                slowest = max(slowest, time.monotonic() - started)
                time.sleep(0.3)
            assert slowest < 1.0, f"/healthz took {slowest:.2f}s"
        finally:
            for sock in slow:
                sock.close()
            for poller in pollers:
                poller.join()
        assert answers.count(200) == 100
