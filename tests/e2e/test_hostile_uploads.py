"""Hostile uploads through the whole pipeline: each fails its own task with a clear code, no worker dies.

The worker resizes in a child process under a memory limit (400 MiB here); the
files are small and claim little in their headers.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from bench.corpus import encode
from tests.images import growing_gif
from tests.pipeline import Pipeline, jpeg_bytes

pytestmark = pytest.mark.e2e
MEMORY_LIMIT_MB = 400


def large_frames_gif(frames: int, side: int) -> bytes:
    """An animation within the frame budget whose frames, all decoded, need ~frames x side^2 x 4 bytes."""
    images = [Image.new("P", (side, side), n % 200) for n in range(frames)]
    for n, image in enumerate(images):
        image.putpalette([(n * 7 + i) % 256 for i in range(768)])
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=50)


TINY_PNG = encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_hostile_uploads_fail_their_own_task_and_the_worker_goes_on(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(resize_memory_limit_mb=MEMORY_LIMIT_MB)
    ten_huge = [{"name": f"v{n}", "width": 10_000, "height": 10_000, "format": "webp"} for n in range(10)]
    cases = {
        "growing frame": (pipeline.submit(growing_gif(9000), "a.gif", width=100), "too_many_pixels"),
        "frame-budget animation": (
            pipeline.submit(large_frames_gif(40, 1600), "b.gif", width=100, format="gif"),
            "resource_limit",
        ),
        "ten 10000x10000 variants": (
            pipeline.submit(TINY_PNG, "c.png", variants=json.dumps(ten_huge)),
            "too_many_pixels",
        ),
        "10000x10000 WebP from 1 pixel": (
            pipeline.submit(TINY_PNG, "d.png", width=10_000, height=10_000, format="webp"),
            "resource_limit",
        ),
    }
    for name, (response, code) in cases.items():
        assert response.status_code == 202, (name, response.text)
        done = pipeline.wait_terminal(response.json()["task_id"], timeout=120)
        assert done["status"] == "FAILURE", (name, done)
        assert done["error"]["code"] == code, (name, done["error"])

    # A child killed from outside in the middle of a resize.
    worker = pipeline.workers[0]
    slow = pipeline.submit(TINY_PNG, "e.png", width=9_000, height=9_000, format="png")
    task_id = slow.json()["task_id"]
    deadline = time.monotonic() + 60
    while pipeline.status(task_id).json()["status"] != "STARTED":
        assert time.monotonic() < deadline, "the slow task never started"
        time.sleep(0.05)
    child = worker.attempts.resizer().child_pid
    assert child is not None
    os.kill(child, signal.SIGKILL)
    done = pipeline.wait_terminal(task_id, timeout=60)
    assert done["status"] == "FAILURE" and done["error"]["code"] == "resource_limit", done

    # The worker is alive and serves the next normal job, in a fresh child.
    assert all(thread.is_alive() for thread in pipeline.threads if thread.name == "worker")
    normal = pipeline.submit(jpeg_bytes(800, 600), width=200)
    assert pipeline.wait_terminal(normal.json()["task_id"])["status"] == "SUCCESS"
    fresh = worker.attempts.resizer().child_pid
    assert fresh is not None and fresh != child
    peak = _peak_rss_mb(fresh)
    print(f"\nhostile uploads: resize child peak RSS {peak:.0f} MiB (limit {MEMORY_LIMIT_MB} MiB of address space)")
    assert peak < MEMORY_LIMIT_MB
