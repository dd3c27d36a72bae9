"""Renditions of one upload: smaller outputs resized from a larger one's pixels, each still its own options."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from bench.photos import jpeg, pillow_photo
from resize_worker import engine
from resize_worker.engine import Target, resize_many

RENDITIONS = [Target(1600, 900), Target(800, 450), Target(400, 400), Target(200, 200), Target(100, 100)]
# PNG: the pixels themselves, not JPEG's own noise on top of them.
LOSSLESS = [Target(t.width, t.height, format="png") for t in RENDITIONS]


@pytest.fixture(scope="module")
def field() -> bytes:
    """A 1920x1080 photo of a field (Pillow's junk_jpeg_header.jpg, scaled): fine texture everywhere."""
    return jpeg(pillow_photo("junk_jpeg_header.jpg").resize((1920, 1080), Image.Resampling.LANCZOS))


def _made(data: bytes, targets: list[Target], factor: float) -> list[engine.ResizedImage]:
    saved = engine.DERIVE_FACTOR
    engine.DERIVE_FACTOR = factor
    try:
        return resize_many(data, targets)
    finally:
        engine.DERIVE_FACTOR = saved


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a - b) ** 2)))


def test_derived_renditions_stay_close_to_those_resized_from_the_source(field: bytes) -> None:
    direct, derived = _made(field, LOSSLESS, math.inf), _made(field, LOSSLESS, engine.DERIVE_FACTOR)
    assert [(r.width, r.height) for r in derived] == [(t.width, t.height) for t in RENDITIONS]
    assert derived[0].data == direct[0].data  # the largest is made from the source either way
    # The smaller ones really were derived (else this test compares a thing with itself) and stay close.
    assert all(a.data != b.data for a, b in zip(direct[1:], derived[1:], strict=True))
    for a, b in zip(direct[1:], derived[1:], strict=True):
        assert _psnr(_pixels(a.data), _pixels(b.data)) > 42


def test_each_rendition_keeps_its_own_order_mode_gravity_and_format(field: bytes) -> None:
    targets = [
        Target(100, 100, gravity="east", format="png"),
        Target(300, mode="fit", format="webp"),
        Target(1600, 900),
        Target(200, 200, mode="pad", format="png"),
    ]
    derived, direct = _made(field, targets, engine.DERIVE_FACTOR), _made(field, targets, math.inf)
    assert [(r.format, r.width, r.height) for r in derived] == [
        ("PNG", 100, 100),
        ("WEBP", 300, 169),
        ("JPEG", 1600, 900),
        ("PNG", 200, 200),
    ]
    # The east crop is the right-hand end of the frame, derived or not (PNG: the pixels themselves).
    assert _psnr(_pixels(derived[0].data), _pixels(direct[0].data)) > 40
    centre = _made(field, [Target(100, 100, format="png")], math.inf)[0]
    assert _psnr(_pixels(derived[0].data), _pixels(centre.data)) < 25
    # Pad keeps its white bars.
    padded = Image.open(io.BytesIO(derived[3].data)).convert("RGB")
    assert padded.getpixel((100, 0)) == (255, 255, 255)
