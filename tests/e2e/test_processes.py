"""The real entry points as separate processes: a worker finishes its task and leaves on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from tests.pipeline import Pipeline, jpeg_bytes

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


def _group_state(settings_bootstrap: str, group: str) -> tuple[ConsumerGroupState, int]:
    admin = AdminClient({"bootstrap.servers": settings_bootstrap})
    description = admin.describe_consumer_groups([group])[group].result(timeout=30)
    return description.state, len(description.members)


def test_worker_process_handles_sigterm_and_leaves_the_group(
    pipeline_factory: Callable[..., Pipeline], tmp_path: Path
) -> None:
    pipeline = pipeline_factory(workers=0)
    settings = pipeline.settings
    env = {
        **os.environ,
        **settings.as_env(),
    }
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen([str(BIN / "resize-worker")], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        task_ids = [pipeline.submit(jpeg_bytes(1600, 1200), width=300, height=300).json()["task_id"] for _ in range(5)]
        for task_id in task_ids:
            assert pipeline.wait_terminal(task_id, timeout=60)["status"] == "SUCCESS"
        state, members = _group_state(settings.kafka_bootstrap_servers, settings.worker_group)
        assert members == 1 and state == ConsumerGroupState.STABLE
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        log.close()
    # A clean close leaves the group at once instead of waiting for the session timeout.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        state, members = _group_state(settings.kafka_bootstrap_servers, settings.worker_group)
        if members == 0:
            break
        time.sleep(0.2)
    assert members == 0 and state == ConsumerGroupState.EMPTY


@pytest.mark.parametrize(
    "command",
    ["resize-worker", "webhook-notifier", "status-projector", "store-janitor", "imgresize", "imgresize-stack"],
)
def test_every_console_script_answers_help_without_the_network(command: str) -> None:
    # A broker address nobody answers on: --help must not try it.
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "S3_ENDPOINT": "127.0.0.1:1"}
    started = time.monotonic()
    done = subprocess.run([str(BIN / command), "--help"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {command}")
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    "command",
    ["resize-worker", "webhook-notifier", "status-projector", "store-janitor", "imgresize", "imgresize-stack"],
)
def test_every_console_script_says_the_one_version(command: str) -> None:
    from common.version import service_version

    done = subprocess.run([str(BIN / command), "--version"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{command} {service_version()}"


def test_metrics_ports_follow_the_base_or_are_off(tmp_path: Path) -> None:
    from local_infra.up import roles

    ports = {r.name: r.env.get("METRICS_PORT") for r in roles({}, ["", ""], 8080, 1, tmp_path, metrics_base_port=9300)}
    assert ports == {
        "projector": "9300",
        "worker-1": "9301",
        "worker-2": "9302",
        "webhooks": "9399",
        "janitor": "9398",
        "api": None,
    }
    off = {r.name: r.env.get("METRICS_PORT") for r in roles({}, ["", ""], 8080, 1, tmp_path, metrics_base_port=0)}
    assert set(off.values()) == {"0", None}


def test_infra_only_starts_kafka_and_s3_and_says_how_to_reach_them(tmp_path: Path) -> None:
    from confluent_kafka.admin import AdminClient as Admin
    from minio import Minio

    from local_infra.process import free_port

    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("S3_ENDPOINT"):
        pytest.skip("starts its own servers; given addresses would be used instead")
    kafka_port, s3_port = free_port(), free_port()
    stack = subprocess.Popen(
        [sys.executable, "-m", "local_infra.stack", "--kafka-port", str(kafka_port), "--s3-port", str(s3_port)]
        + ["--run-dir", str(tmp_path)],
        env={**os.environ, "LOCAL_INFRA_NO_DOCKER": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    told: dict[str, str] = {}
    try:
        assert stack.stdout is not None
        for line in stack.stdout:
            if "export " in line:
                name, value = line.split("export ", 1)[1].strip().split("=", 1)
                told[name] = value
            if "Ctrl-C stops them" in line:
                break
        assert told["KAFKA_BOOTSTRAP_SERVERS"] == f"127.0.0.1:{kafka_port}"
        assert told["S3_ENDPOINT"] == f"127.0.0.1:{s3_port}"
        metadata = Admin({"bootstrap.servers": told["KAFKA_BOOTSTRAP_SERVERS"]}).list_topics(timeout=10)
        assert "image.resize.requested" in metadata.topics
        s3 = Minio(told["S3_ENDPOINT"], told["S3_ACCESS_KEY"], told["S3_SECRET_KEY"], secure=False)
        assert s3.bucket_exists("images")
    finally:
        stack.send_signal(signal.SIGTERM)
        stack.communicate(timeout=60)  # the rest of its output, and its pipe closed
    assert stack.returncode == 0
