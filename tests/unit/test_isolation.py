"""Hostile inputs against the budgets and the isolated child: each fails its task, none takes the worker down.

These start real child processes (the fork server's), as the worker does.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest
from PIL import Image

from bench.corpus import encode, photo_like
from resize_worker.engine import Target, resize
from resize_worker.isolation import IsolatedResizer
from tests.images import growing_gif
from vocabulary.errors import ResizeError, TooManyPixels

BUDGET = {"max_pixels": 50_000_000, "max_frames": 300, "max_output_pixels": 100_000_000}


TINY_PNG = encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG")
PHOTO = encode(photo_like(320, 240), "JPEG")


@pytest.fixture
def resizer() -> Iterator[IsolatedResizer]:
    isolated = IsolatedResizer(memory_limit_mb=400, time_limit_seconds=20)
    yield isolated
    isolated.close()


def test_a_frame_growing_past_the_declared_screen_is_over_budget() -> None:
    with pytest.raises(TooManyPixels, match="frame 1 is 7000x7000"):
        resize(growing_gif(7000), 100, 100, "fit", max_pixels=20_000_000)


def test_the_outputs_of_all_variants_share_one_budget() -> None:
    with pytest.raises(TooManyPixels, match="outputs come to"):
        resize(TINY_PNG, 10_000, 10_000, "fill", "webp", max_output_pixels=99_999_999)


def test_an_output_over_the_memory_limit_fails_with_resource_limit_and_the_next_task_succeeds(
    resizer: IsolatedResizer,
) -> None:
    with pytest.raises(ResizeError) as failed:
        resizer.resize_many(TINY_PNG, [Target(10_000, 10_000, "fill", "webp")], **BUDGET)
    assert failed.value.code == "resource_limit"
    assert resizer.resize_many(PHOTO, [Target(80, 60)], **BUDGET)[0].width == 80


def test_a_resize_over_the_time_limit_is_stopped() -> None:
    slow = IsolatedResizer(memory_limit_mb=0, time_limit_seconds=0.3)
    try:
        with pytest.raises(ResizeError, match="longer than the 0.3 s limit") as failed:
            slow.resize_many(TINY_PNG, [Target(8_000, 8_000, "fill", "webp")], **BUDGET)
        assert failed.value.code == "resource_limit"
        assert slow.child_pid is None  # the child was killed, not left running
    finally:
        slow.close()


def test_a_child_killed_mid_resize_fails_the_task_not_the_worker(resizer: IsolatedResizer) -> None:
    resizer.resize_many(PHOTO, [Target(80, 60)], **BUDGET)  # the child is up
    pid = resizer.child_pid
    assert pid is not None and pid != os.getpid()
    threading.Timer(0.2, os.kill, (pid, signal.SIGKILL)).start()
    with pytest.raises(ResizeError, match="died") as failed:
        resizer.resize_many(TINY_PNG, [Target(8_000, 8_000, "fill", "webp")], **BUDGET)
    assert failed.value.code == "resource_limit"
    assert resizer.resize_many(PHOTO, [Target(80, 60)], **BUDGET)[0].width == 80
    assert resizer.child_pid != pid


def test_refusals_from_the_child_keep_their_code(resizer: IsolatedResizer) -> None:
    with pytest.raises(ResizeError) as refused:
        resizer.resize_many(b"not an image at all", [Target(10, 10)], **BUDGET)
    assert refused.value.code == "not_an_image"


def test_a_child_for_bulk_work_runs_at_the_niceness_it_was_given() -> None:
    import os

    low = IsolatedResizer(memory_limit_mb=1024, time_limit_seconds=30, nice=7)
    try:
        low.resize_many(PHOTO, [Target(80, 60)], **BUDGET)
        assert low.child_pid is not None
        assert os.getpriority(os.PRIO_PROCESS, low.child_pid) == os.getpriority(os.PRIO_PROCESS, 0) + 7
    finally:
        low.close()
