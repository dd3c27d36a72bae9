"""Child processes started by local_infra: they die with this process, not with the thread that started them."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from local_infra.process import ManagedProcess


def test_a_child_started_from_a_short_lived_thread_outlives_the_thread(tmp_path: Path) -> None:
    # A broker restarted from a pool thread must not be killed when the pool shuts down.
    started: list[ManagedProcess] = []
    thread = threading.Thread(
        target=lambda: started.append(
            ManagedProcess("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "sleeper.log")
        )
    )
    thread.start()
    thread.join()
    child = started[0]
    try:
        time.sleep(1.0)
        assert child.alive(), f"the child died with its starting thread (exit code {child.popen.returncode})"
    finally:
        child.stop(timeout=5)
    assert not child.alive()


def test_a_child_is_in_a_process_group_of_its_own(tmp_path: Path) -> None:
    # Stopped by PID: a Ctrl-C meant for the test run does not reach it half-way through a restart.
    child = ManagedProcess("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "s.log")
    try:
        assert os.getpgid(child.pid) == child.pid
    finally:
        child.stop(timeout=5)
