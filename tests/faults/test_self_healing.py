"""`make up` heals itself: kill -9 of the broker, then of the S3 server, during a 300-job run.

The stack runs as `make up` runs it (python -m local_infra.up, its own broker and
S3 server on fixed ports). Jobs are submitted throughout, each retried with its
Idempotency-Key while a server is down (a 503). Every job must end SUCCESS, soon
after the killed server is back, with exactly one task and one row per job.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from local_infra.process import free_port, spawn, terminate
from tests.pipeline import jpeg_bytes, submit_until_accepted

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
JOBS = 300
CLIENTS = 6
# Each kill must be healed, and every job accepted so far finished, within this.
HEALED_WITHIN_SECONDS = 60.0


class Stack:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.api = f"http://127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP_SERVERS", "S3_ENDPOINT"}}
        self.log = open(run_dir / "up.log", "wb")  # noqa: SIM115 - closed in stop()
        self.popen = spawn(
            [sys.executable, "-m", "local_infra.up", "--workers", "2", "--api-processes", "1"]
            + ["--api-port", self.api.rsplit(":", 1)[1], "--kafka-port", str(free_port())]
            + ["--s3-port", str(free_port()), "--run-dir", str(run_dir)],
            cwd=ROOT,
            env={**env, "LOCAL_INFRA_NO_DOCKER": "1"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def server_pid(self, marker: str) -> int:
        """The PID of the process whose command line holds `marker` (a path under this run's directory)."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline and "local_infra.up" not in cmdline:
                return int(entry.name)
        raise LookupError(f"no process with {marker!r}")

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.api}/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        terminate(self.popen, 90)
        self.log.close()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("S3_ENDPOINT"):
        pytest.skip("kills the stack's own servers; given addresses are not ours to kill")
    running = Stack(tmp_path)
    try:
        deadline = time.monotonic() + 180
        while not running.ready():
            assert running.popen.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "make up's stack was not ready in 180 s"
            time.sleep(0.5)
        yield running
    finally:
        running.stop()


def _unfinished(base: str, task_ids: list[str]) -> list[str]:
    left = []
    for task_id in task_ids:
        try:
            status = requests.get(f"{base}/api/v1/status/{task_id}", timeout=10).json().get("status")
        except (requests.RequestException, ValueError):
            status = None
        if status != "SUCCESS":
            assert status != "FAILURE", f"{task_id} failed"
            left.append(task_id)
    return left


def _wait_all_success(base: str, task_ids: list[str], since: float) -> float:
    """Seconds from `since` until every task is SUCCESS."""
    left = list(task_ids)
    while left:
        assert time.monotonic() - since < HEALED_WITHIN_SECONDS, f"{len(left)} of {len(task_ids)} not done: {left[:3]}"
        left = _unfinished(base, left)
        if left:
            time.sleep(0.5)
    return time.monotonic() - since


def test_killed_broker_and_s3_server_are_restarted_and_no_accepted_job_is_lost(stack: Stack) -> None:
    image = jpeg_bytes()
    accepted: list[str] = []
    lock = threading.Lock()
    kills = {JOBS // 3: f"{stack.run_dir}/kafka/server.properties", 2 * JOBS // 3: f"{stack.run_dir}/s3"}
    healed: dict[str, float] = {}
    refusals: list[int] = []

    def job(turn: int) -> None:
        marker = kills.get(turn)
        if marker is not None:
            name = "kafka" if "kafka" in marker else "s3"
            with lock:
                before = list(accepted)
            killed_at = time.monotonic()
            os.kill(stack.server_pid(marker), signal.SIGKILL)
            healed[name] = _wait_all_success(stack.api, before, killed_at)
        task_id, refused = submit_until_accepted(stack.api, image, turn, 64, frozenset({429, 503}))
        with lock:
            accepted.append(task_id)
            refusals.append(refused)

    # CLIENTS threads take the jobs in turn; a thread that kills a server waits for it, the others go on.
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(job, range(1, JOBS + 1)))
    finish = _wait_all_success(stack.api, accepted, time.monotonic())
    with sqlite3.connect(stack.run_dir / "status.sqlite3") as view:
        rows = view.execute("SELECT task_id FROM tasks").fetchall()
    print(
        f"\nself-healing: {JOBS} jobs, {sum(refusals)} refusals (503) while a server was down, each job accepted"
        f" once retried with its Idempotency-Key; every job SUCCESS; kill -9 of Kafka -> all earlier jobs done in"
        f" {healed['kafka']:.1f}s, of S3 -> {healed['s3']:.1f}s; the last jobs {finish:.1f}s after the run"
    )
    # One task per job, one view row per task: no job lost, none doubled by a retry.
    assert len(accepted) == len(set(accepted)) == JOBS
    assert {row[0] for row in rows} == set(accepted)
    up_log = (stack.run_dir / "up.log").read_text(errors="replace")
    assert "kafka       | restarted" in up_log and "s3          | restarted" in up_log
