"""Local infrastructure never outlives the run that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

STACK_SCRIPT = """
import signal, sys, time
from pathlib import Path
from local_infra.stack import provide

def interrupt(*_):
    raise KeyboardInterrupt
signal.signal(signal.SIGTERM, interrupt)
with provide(Path(sys.argv[1]), Path(sys.argv[2]), env={}) as infra:
    print("READY", flush=True)
    time.sleep(600)
"""


def _pids_under(path: Path) -> list[int]:
    found = subprocess.run(["pgrep", "-f", str(path)], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def _start_stack(run_dir: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP_SERVERS", "S3_ENDPOINT"}}
    env["LOCAL_INFRA_NO_DOCKER"] = "1"
    stack = subprocess.Popen(
        [sys.executable, "-c", STACK_SCRIPT, str(run_dir), str(ROOT / ".cache")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert stack.stdout is not None
    for line in stack.stdout:
        if "READY" in line:
            break
    return stack


def _gone(pids: list[int], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pids_under_any(pids):
            return True
        time.sleep(0.2)
    return False


def _pids_under_any(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    return alive


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_broker_and_s3_stop_with_the_run(tmp_path: Path, how: signal.Signals) -> None:
    stack = _start_stack(tmp_path)
    children = _pids_under(tmp_path)
    assert len(children) >= 2, "a Kafka broker and an S3 server run under the run directory"
    stack.send_signal(how)
    stack.wait(timeout=60)
    assert stack.stdout is not None
    stack.stdout.close()
    # SIGTERM: stopped by PID in the finalizers; SIGKILL: the kernel's parent-death signal.
    assert _gone(children), f"left behind: {_pids_under_any(children)}"
