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
        **{name.upper(): str(value) for name, value in settings.model_dump().items()},
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
