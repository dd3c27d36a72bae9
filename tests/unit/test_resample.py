"""The OpenCV reduction path: as close to a full-precision LANCZOS resize as Pillow's own filters, on real photos."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bench.photos import pillow_photo, skimage_photo
from common import heap
from resize_worker import resample
from resize_worker.engine import Target, resize_many


def _reference(source: Image.Image, size: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    """LANCZOS in floating point, band by band: no 8-bit rounding inside the filter."""
    bands = [band.convert("F").resize(size, Image.Resampling.LANCZOS, box=box) for band in source.split()]
    return np.stack([np.clip(np.asarray(b), 0, 255).round() for b in bands], axis=-1).squeeze()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255**2 / mse)


@pytest.fixture(scope="module")
def field() -> Image.Image:
    """Pillow's field photo at 1920x1080: fine texture everywhere, where a weak low-pass aliases."""
    return pillow_photo("junk_jpeg_header.jpg").convert("RGB").resize((1920, 1080), Image.Resampling.LANCZOS)


@pytest.mark.parametrize(
    ("size", "box"),
    [
        ((1600, 900), (0, 0, 1920, 1080)),
        ((1280, 720), (0, 0, 1920, 1080)),
        ((400, 400), (420, 0, 1500, 1080)),
        ((640, 400), (100, 21, 1700, 1021)),
    ],
)
def test_a_reduction_is_as_close_to_lanczos_as_pillows_bicubic(
    field: Image.Image, size: tuple[int, int], box: tuple[float, float, float, float]
) -> None:
    assert resample.handles(field, size, box)
    reference = _reference(field, size, box)
    made = resample.reduce(field, size, box)
    assert made.size == size and made.mode == "RGB"
    pillow = field.resize(size, Image.Resampling.BICUBIC, box=box)
    # Sampled where Pillow samples, with the pixels around the box.
    assert _psnr(np.asarray(made), reference) >= _psnr(np.asarray(pillow), reference)
    assert _psnr(np.asarray(made), reference) > 44


def test_a_box_with_a_fractional_edge_stays_with_pillow() -> None:
    picture = Image.new("RGB", (200, 200))
    assert not resample.handles(picture, (100, 100), (0.5, 0, 200, 200))
    assert resample.handles(picture, (100, 100), (1, 0, 199, 200))


def test_grey_pictures_take_the_same_path() -> None:
    grey = skimage_photo("camera.png").convert("L")
    size, box = (300, 300), (0.0, 0.0, float(grey.width), float(grey.height))
    made = resample.reduce(grey, size, box)
    assert made.mode == "L" and made.size == size
    assert _psnr(np.asarray(made), _reference(grey, size, box)) > 40


@pytest.mark.parametrize(
    ("mode", "size", "expected"),
    [
        ("RGB", (100, 100), True),
        ("RGBA", (100, 100), False),  # Pillow resizes these premultiplied by alpha: left to it
        ("LA", (100, 100), False),
        ("RGB", (200, 200), False),  # not a reduction
        ("RGB", (60, 60), False),  # 3x and more: box reduce and LANCZOS
        ("RGB", (300, 300), False),  # an enlargement
    ],
)
def test_only_rgb_and_grey_reductions_under_3x_take_this_path(mode: str, size: tuple[int, int], expected: bool) -> None:
    assert resample.handles(Image.new(mode, (200, 200)), size, (0, 0, 200, 200)) is expected


def test_the_kernel_is_a_normalised_low_pass_as_wide_as_the_reduction() -> None:
    narrow, wide = resample.kernel(1.2), resample.kernel(2.5)
    assert abs(float(narrow.sum()) - 1) < 1e-6 and abs(float(wide.sum()) - 1) < 1e-6
    assert len(narrow) < len(wide)
    assert int(np.argmax(wide)) == len(wide) // 2
    assert np.allclose(wide, wide[::-1])


def test_the_engine_makes_a_photo_through_this_path(field: Image.Image) -> None:
    out = io.BytesIO()
    field.save(out, "JPEG", quality=92)
    made = resize_many(out.getvalue(), [Target(1600, 900, format="png")])[0]
    expected = resample.reduce(field, (1600, 900), (0, 0, 1920, 1080))
    got = np.asarray(Image.open(io.BytesIO(made.data)).convert("RGB"))
    # The engine decodes the JPEG (not the pristine picture): close, not equal.
    assert _psnr(got, np.asarray(expected)) > 35


def test_the_heap_settings_are_taken_by_glibc() -> None:
    assert heap.keep_freed_buffers() is True
    assert heap.limit_arenas() is True
