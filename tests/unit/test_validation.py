"""Form validation is by value and content, never by file name."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from werkzeug.datastructures import FileStorage

from producer_api.errors import ApiError
from producer_api.validation import ResizeOrder, auto_quality_problem, parse_order, read_image
from schemas.events import FocalPoint
from vocabulary.options import ResizeOptions


@pytest.mark.parametrize(
    ("form", "options"),
    [
        ({"width": "200", "height": "100"}, ResizeOptions(200, 100, "fill", None)),
        ({"width": " 1 ", "height": "10000"}, ResizeOptions(1, 10000, "fill", None)),
        ({"width": "50"}, ResizeOptions(50, None, "fill", None)),
        ({"height": "50", "mode": "FIT", "format": "jpg"}, ResizeOptions(None, 50, "fit", "jpeg")),
        (
            {"width": "9", "quality": "70", "gravity": "North", "upscale": "false"},
            ResizeOptions(9, None, "fill", None, 70, "north", False),
        ),
        ({"width": "5", "height": "", "mode": "stretch", "format": "webp"}, ResizeOptions(5, None, "stretch", "webp")),
        (
            {"width": "9", "height": "9", "gravity": "FACE", "quality": "Auto", "focus": " 0.25 , 1 "},
            ResizeOptions(9, 9, gravity="face", auto_quality=True, focus=FocalPoint(0.25, 1.0)),
        ),
        (
            {"width": "9", "gravity": "smart", "focus": "0,.5"},
            ResizeOptions(9, gravity="smart", focus=FocalPoint(0, 0.5)),
        ),
        # Empty fields are absent ones: their defaults.
        ({"width": "5", "mode": "", "gravity": " ", "format": "", "upscale": ""}, ResizeOptions(5, None, "fill", None)),
    ],
)
def test_valid_forms(form: dict[str, str], options: ResizeOptions) -> None:
    assert parse_order(form, 10_000) == ResizeOrder(options)


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"width": "0"}, "invalid_dimension"),
        ({"width": "10001"}, "invalid_dimension"),
        ({"width": "-1"}, "invalid_dimension"),
        ({"width": "1e3"}, "invalid_dimension"),
        ({"width": "12.0"}, "invalid_dimension"),
        ({"height": "x"}, "invalid_dimension"),
        ({"width": "٣"}, "invalid_dimension"),
        ({}, "missing_dimension"),
        ({"width": "10", "mode": "crop"}, "invalid_mode"),
        ({"width": "10", "format": "tiff"}, "invalid_format"),
        ({"width": "10", "quality": "0"}, "invalid_quality"),
        ({"width": "10", "quality": "101"}, "invalid_quality"),
        ({"width": "10", "gravity": "up"}, "invalid_gravity"),
        ({"width": "10", "upscale": "maybe"}, "invalid_upscale"),
        ({"width": "10", "quality": "automatic"}, "invalid_quality"),
        ({"width": "10", "focus": "2,0.5"}, "invalid_focus"),
        ({"width": "10", "focus": "0.5"}, "invalid_focus"),
        ({"width": "10", "focus": "0.5,0.5,0.5"}, "invalid_focus"),
        ({"width": "10", "focus": "nan,0.5"}, "invalid_focus"),
        ({"width": "10", "focus": "-0.1,0.5"}, "invalid_focus"),
        ({"width": "10", "focus": "٠.٥,0.5"}, "invalid_focus"),
        ({"width": "10", "focus": "x,y"}, "invalid_focus"),
        ({"sizes": "10x10", "variants": ""}, None),
        ({"variants": '[{"width": 10, "focus": "1.5,0"}]'}, "invalid_focus"),
        ({"variants": '[{"width": 10, "gravity": "faces"}]'}, "invalid_gravity"),
    ],
)
def test_invalid_forms(form: dict[str, str], code: str | None) -> None:
    if code is None:
        parse_order(form, 10_000)  # the control: the same shape, valid
        return
    with pytest.raises(ApiError) as error:
        parse_order(form, 10_000)
    assert error.value.status == 422
    assert error.value.code == code


def _upload(data: bytes, name: str) -> dict[str, FileStorage]:
    return {"file": FileStorage(io.BytesIO(data), filename=name, content_type="image/jpeg")}


def test_content_decides_not_the_name() -> None:
    png = io.BytesIO()
    Image.new("RGB", (30, 20)).save(png, "PNG")
    data, info = read_image(_upload(png.getvalue(), "holiday.jpg"), 1_000_000)
    assert info.format == "PNG" and (info.width, info.height) == (30, 20)
    assert data == png.getvalue()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"plain text pretending" * 5, "not_an_image"),
        (b"\xff\xd8\xff" + b"\x00" * 40, "corrupt_image"),
        (b"", "empty_file"),
    ],
)
def test_bad_uploads(data: bytes, code: str) -> None:
    with pytest.raises(ApiError) as error:
        read_image(_upload(data, "x.jpg"), 1_000_000)
    assert error.value.code == code


def test_pixel_budget_is_checked_from_the_header() -> None:
    big = io.BytesIO()
    Image.new("L", (2000, 2000)).save(big, "PNG")
    with pytest.raises(ApiError) as error:
        read_image(_upload(big.getvalue(), "big.png"), 1_000_000)
    assert error.value.code == "too_many_pixels"


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [("image/avif,image/webp,*/*", "avif"), ("image/webp,*/*", "webp"), ("*/*", None), ("", None)],
)
def test_format_auto_follows_accept(accept: str, chosen: str | None) -> None:
    assert parse_order({"width": "10", "format": "auto"}, 10_000, accept).options.format == chosen


@pytest.mark.parametrize(
    ("form", "source", "refused"),
    [
        ({"width": "10", "quality": "auto"}, "JPEG", False),
        ({"width": "10", "quality": "auto"}, "PNG", True),
        ({"width": "10", "quality": "auto"}, "GIF", True),
        ({"width": "10", "quality": "auto", "format": "webp"}, "GIF", False),
        ({"width": "10", "quality": "auto", "format": "gif"}, "JPEG", True),
        ({"sizes": "10x10,20x20", "quality": "auto", "format": "avif"}, "PNG", False),
        ({"variants": '[{"width": 10, "quality": "auto", "format": "png"}, {"width": 5}]'}, "JPEG", True),
    ],
)
def test_quality_auto_is_for_lossy_outputs_only(form: dict[str, str], source: str, refused: bool) -> None:
    problem = auto_quality_problem(parse_order(form, 10_000), source)
    assert (problem is not None) == refused
