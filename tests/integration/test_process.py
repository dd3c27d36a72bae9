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


def test_stopping_a_child_also_stops_what_it_left_behind_in_its_group(tmp_path: Path) -> None:
    # A server whose worker misses the stop (granian's, once) must not leave the worker running.
    script = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']); "
        "time.sleep(60)"
    )
    parent = ManagedProcess("server", [sys.executable, "-c", script], tmp_path / "server.log")
    time.sleep(0.5)
    straggler = [int(p) for p in Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()]
    assert len(straggler) == 1
    parent.stop(timeout=5)
    time.sleep(0.2)
    assert (
        not Path(f"/proc/{straggler[0]}").exists() or "Z" in Path(f"/proc/{straggler[0]}/stat").read_text().split()[2]
    )
