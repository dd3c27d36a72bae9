"""The API under the server `make up` runs it with (granian), not the test server: uploads, limits, slow clients."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from local_infra.process import ManagedProcess, free_port, port_open, wait_until
from local_infra.up import roles
from tests.pipeline import Pipeline, jpeg_bytes

pytestmark = pytest.mark.e2e


@pytest.fixture
def served(pipeline_factory: Callable[..., Pipeline], tmp_path: Path) -> Iterator[tuple[Pipeline, str]]:
    """A pipeline whose API also runs as `make up` starts it: the same argv, in a process of its own."""
    pipeline = pipeline_factory(workers=1, max_upload_bytes=1024 * 1024)
    env = {**os.environ, **{name.upper(): str(value) for name, value in pipeline.settings.model_dump().items()}}
    port = free_port()
    api = next(role for role in roles(env, 0, port, 1, tmp_path) if role.name == "api")
    server = ManagedProcess("api", api.argv, tmp_path / "api.log", env=api.env)
    try:
        wait_until(lambda: port_open(port), 30, "API server", server)
        yield pipeline, f"http://127.0.0.1:{port}"
    finally:
        server.stop()


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
