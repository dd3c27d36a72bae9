"""Hostile inputs against the budgets and the isolated child: each fails its task, none takes the worker down.

These start real child processes (the fork server's), as the worker does.
"""

from __future__ import annotations

import io
import os
import signal
import struct
import threading
from collections.abc import Iterator

import pytest
from PIL import Image

from bench.corpus import photo_like
from resize_worker.engine import Target, resize
from resize_worker.errors import ResizeError, TooManyPixels
from resize_worker.isolation import IsolatedResizer

BUDGET = {"max_pixels": 50_000_000, "max_frames": 300, "max_output_pixels": 100_000_000}


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def growing_gif(side: int) -> bytes:
    """A GIF whose header says 1x1 and whose second frame is side x side (Pillow grows the canvas on seek)."""
    frames = [Image.new("RGB", (1, 1), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    data = bytearray(encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100))
    descriptors = [i for i in range(len(data) - 9) if data[i] == 0x2C and data[i + 5 : i + 9] == b"\x01\x00\x01\x00"]
    struct.pack_into("<HH", data, descriptors[-1] + 5, side, side)
    return bytes(data)


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
