"""Reductions under 3x by OpenCV: a Lanczos-3 low-pass at the source's pixel spacing, then cubic interpolation.

Pillow convolves one output pixel at a time in plain C: 1920x1080 -> 1600x900
costs ~40 ms of CPU here, the largest single cost of a five-renditions upload,
and 1920x1080 -> 1280x720 ~30 ms. OpenCV's separable filter and its cubic
resize are vectorised. Filtering with the Lanczos-3 kernel stretched by the
reduction factor, sampled at the source's spacing, is the low-pass an
antialiased resize applies; cubic interpolation of the filtered pixels then
samples it at the output's spacing. Measured on five photos (1600x900,
1280x720 and 711x400 from 1920x1080): JPEG quality 85 outputs within 0.1 dB
PSNR of Pillow's LANCZOS and never below its BICUBIC, in a third to a half of
the time. From 3x up the kernel grows wide at the source's spacing, so the
engine keeps Pillow's box reduce and LANCZOS there.

Only RGB and L: for RGBA and LA Pillow resizes premultiplied by alpha, and the
engine keeps that. Only boxes on whole pixels (see handles()).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

# The modes this path handles; the others stay with Pillow.
MODES = frozenset({"RGB", "L"})
# Reductions from just over 1x to under this factor, on both axes.
MAX_FACTOR = 3.0
_LOBES = 3
# How near a whole number a box edge must be to count as one.
_WHOLE = 1e-6


def handles(image: Image.Image, size: tuple[int, int], box: tuple[float, float, float, float]) -> bool:
    """Whether this path makes `box` of `image` into `size`: a reduction under MAX_FACTOR, in RGB or L, of a box
    on whole pixels.

    A box with a fractional edge (a crop placed on a focal point or a subject) stays with Pillow, which samples
    it exactly: shifting OpenCV's filter by a fraction makes it asymmetric, and OpenCV's asymmetric separable
    filter is three times slower than its symmetric one, as slow as Pillow.
    """
    if image.mode not in MODES or any(abs(v - round(v)) > _WHOLE for v in box):
        return False
    fx, fy = factors(box, size)
    return min(fx, fy) >= 1.0 and 1.0 < max(fx, fy) < MAX_FACTOR


def factors(box: tuple[float, float, float, float], size: tuple[int, int]) -> tuple[float, float]:
    """How many times `box` is reduced to `size`, across and down (under 1: enlarged)."""
    return (box[2] - box[0]) / size[0], (box[3] - box[1]) / size[1]


@functools.lru_cache(maxsize=64)
def kernel(factor: float) -> np.ndarray:
    """Lanczos-3 stretched by `factor`, sampled at whole source pixels, summing to 1 (odd length, symmetric)."""
    radius = math.ceil(_LOBES * factor)
    taps = np.array([_lanczos(i / factor) for i in range(-radius, radius + 1)], dtype=np.float32)
    return taps / taps.sum()


def _lanczos(x: float) -> float:
    x = abs(x)
    if x >= _LOBES:
        return 0.0
    if x == 0:
        return 1.0
    px = math.pi * x
    return _LOBES * math.sin(px) * math.sin(px / _LOBES) / (px * px)


@dataclass(frozen=True)
class _Axis:
    """One axis of a reduction: the source span filtered, and the box's part of it."""

    start: int  # first source pixel filtered
    stop: int  # one past the last
    first: int  # the box's first pixel, counted from `start`
    taken: int  # pixels handed to the interpolation from `first`: the box, and two more where the picture has them
    factor: float
    taps: np.ndarray


def _axis(begin: int, end: int, out: int, length: int) -> _Axis:
    factor = (end - begin) / out
    taps = kernel(round(factor, 4))
    radius = len(taps) // 2
    start, stop = max(0, begin - radius), min(length, end + radius + 2)
    return _Axis(start, stop, begin - start, min(stop, end + 2) - begin, factor, taps)


def reduce(image: Image.Image, size: tuple[int, int], box: tuple[float, float, float, float]) -> Image.Image:
    """`box` of `image` resized to `size` (see handles()), sampled where Pillow samples it.

    Output pixel x is the filtered picture at left + (x + 0.5) * factor - 0.5: OpenCV's
    resize, given the factor rather than a size, keeps that mapping exact.
    """
    pixels = np.asarray(image)
    height, width = pixels.shape[:2]
    left, top, right, bottom = (round(v) for v in box)
    x, y = _axis(left, right, size[0], width), _axis(top, bottom, size[1], height)
    # The box with the pixels around it, as a resize of the whole picture would see them.
    region = pixels[y.start : y.stop, x.start : x.stop]
    filtered = cv2.sepFilter2D(region, -1, x.taps, y.taps, borderType=cv2.BORDER_REFLECT)
    inside = filtered[y.first : y.first + y.taken, x.first : x.first + x.taken]
    made = cv2.resize(inside, None, fx=1 / x.factor, fy=1 / y.factor, interpolation=cv2.INTER_CUBIC)
    return Image.fromarray(np.ascontiguousarray(made[: size[1], : size[0]]), image.mode)
