"""Resize plans: exact sizes, crops inside the source, fits inside the box."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from resize_worker.geometry import plan

sides = st.integers(min_value=1, max_value=5000)


@given(sides, sides, sides, sides)
def test_fill_is_exact_and_crops_inside_the_source(sw: int, sh: int, w: int, h: int) -> None:
    p = plan(sw, sh, w, h, "fill")
    assert p.scaled == p.canvas == (w, h)
    left, top, right, bottom = p.crop
    assert -1e-6 <= left <= right <= sw + 1e-6 and -1e-6 <= top <= bottom <= sh + 1e-6
    # Same aspect ratio in the crop and the output: no distortion.
    assert abs((right - left) / (bottom - top) - w / h) < 1e-6 * max(1, w / h)


@given(sides, sides, sides, sides)
def test_fit_stays_in_the_box_and_pad_fills_it(sw: int, sh: int, w: int, h: int) -> None:
    fitted = plan(sw, sh, w, h, "fit")
    assert fitted.scaled[0] <= w and fitted.scaled[1] <= h
    assert fitted.scaled[0] == w or fitted.scaled[1] == h
    padded = plan(sw, sh, w, h, "pad")
    assert padded.canvas == (w, h) and padded.scaled == fitted.scaled
    x, y = padded.offset
    assert x >= 0 and x + padded.scaled[0] <= w and y >= 0 and y + padded.scaled[1] <= h


@given(sides, sides, sides)
def test_one_side_keeps_the_aspect_ratio(sw: int, sh: int, w: int) -> None:
    p = plan(sw, sh, w, None, "fill")
    assert p.scaled[0] == w
    assert p.scaled[1] == max(1, round(sh * w / sw))
