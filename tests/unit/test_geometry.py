"""Resize plans: exact sizes, crops inside the source, fits inside the box."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resize_worker.geometry import plan
from vocabulary.options import GRAVITIES

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
    fitted = plan(sw, sh, w, h, "fit", upscale=True)
    assert fitted.scaled[0] <= w and fitted.scaled[1] <= h
    assert fitted.scaled[0] == w or fitted.scaled[1] == h
    padded = plan(sw, sh, w, h, "pad", upscale=True)
    assert padded.canvas == (w, h) and padded.scaled == fitted.scaled
    x, y = padded.offset
    assert x >= 0 and x + padded.scaled[0] <= w and y >= 0 and y + padded.scaled[1] <= h


@given(sides, sides, sides)
def test_one_side_keeps_the_aspect_ratio(sw: int, sh: int, w: int) -> None:
    p = plan(sw, sh, w, None, "fill")
    assert p.scaled[0] == w
    assert p.scaled[1] == max(1, round(sh * w / sw))


@given(sides, sides, sides, sides)
def test_fit_and_pad_never_enlarge_unless_asked(sw: int, sh: int, w: int, h: int) -> None:
    for mode in ("fit", "pad"):
        p = plan(sw, sh, w, h, mode)
        assert p.scaled[0] <= max(sw, 1) and p.scaled[1] <= max(sh, 1)
        assert p.scaled[0] <= w and p.scaled[1] <= h


def test_fill_keeps_the_exact_size_promise_by_default_and_can_refuse_to_enlarge() -> None:
    assert plan(100, 50, 400, 400, "fill").scaled == (400, 400)
    assert plan(100, 50, 400, 400, "fill", upscale=False).scaled == (50, 50)


@pytest.mark.parametrize(
    ("gravity", "left", "top"),
    [("centre", 100.0, 0.0), ("west", 0.0, 0.0), ("east", 200.0, 0.0), ("northeast", 200.0, 0.0)],
)
def test_gravity_places_the_fill_window(gravity: str, left: float, top: float) -> None:
    p = plan(300, 100, 50, 50, "fill", GRAVITIES[gravity])
    assert p.crop[:2] == (left, top) and p.crop[2] - p.crop[0] == 100.0


def test_vertical_gravity() -> None:
    assert plan(100, 300, 50, 50, "fill", GRAVITIES["south"]).crop == (0.0, 200.0, 100.0, 300.0)


def test_a_smaller_crop_inside_a_larger_output_maps_onto_its_pixels() -> None:
    from resize_worker.geometry import box_within

    large = plan(1920, 1080, 1600, 900, "fill")  # the whole source at 1600/1920
    small = plan(1920, 1080, 400, 400, "fill")  # the centre 1080x1080
    assert box_within(large, small, 2.0) == pytest.approx((350.0, 0.0, 1250.0, 900.0))
    # Not enough detail in the larger one (400 needs 0.37 per source pixel; 800x450 holds 0.42).
    assert box_within(plan(1920, 1080, 800, 450, "fill"), small, 2.0) is None
    # A crop the larger output does not cover.
    east = plan(1920, 1080, 100, 100, "fill", anchor=(1.0, 0.5))
    assert box_within(plan(1920, 1080, 800, 800, "fill"), east, 2.0) is None
    assert box_within(large, east, 2.0) == pytest.approx((700.0, 0.0, 1600.0, 900.0))
