"""The resize engine: each mode's size, orientation, alpha, formats, and refusals."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from resize_worker.engine import resize
from vocabulary.errors import CorruptImage, InvalidRequest, NotAnImage, TooManyPixels


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


JPEG_400x300 = encode(Image.new("RGB", (400, 300), (250, 0, 0)), "JPEG")


@pytest.mark.parametrize(
    ("mode", "width", "height", "expected"),
    [
        ("fill", 100, 100, (100, 100)),
        ("fit", 100, 100, (100, 75)),
        ("pad", 100, 100, (100, 100)),
        ("stretch", 100, 50, (100, 50)),
        ("fill", 200, None, (200, 150)),
        ("fit", None, 60, (80, 60)),
        ("stretch", None, 30, (40, 30)),
    ],
)
def test_output_size_per_mode(mode: str, width: int | None, height: int | None, expected: tuple[int, int]) -> None:
    result = resize(JPEG_400x300, width, height, mode)
    assert (result.width, result.height) == expected
    assert decoded(result.data).size == expected
    assert result.content_type == "image/jpeg"
    assert (result.source_width, result.source_height) == (400, 300)


def test_fill_crops_the_centre_without_distortion() -> None:
    # Left third red, middle green, right third blue; a square fill keeps only the middle.
    image = Image.new("RGB", (300, 100), (255, 0, 0))
    image.paste((0, 255, 0), (100, 0, 200, 100))
    image.paste((0, 0, 255), (200, 0, 300, 100))
    result = decoded(resize(encode(image, "PNG"), 50, 50, "fill").data).convert("RGB")
    r, g, b = result.getpixel((25, 25))  # type: ignore[misc]
    assert g > 200 and r < 50 and b < 50
    for corner in ((2, 2), (47, 47)):
        assert result.getpixel(corner)[1] > 200  # type: ignore[index]


def test_pad_fills_the_rest_and_keeps_the_image_centred() -> None:
    result = decoded(resize(encode(Image.new("RGB", (200, 100), (0, 0, 255)), "PNG"), 100, 100, "pad").data)
    assert result.size == (100, 100)
    assert result.getpixel((50, 5))[3] == 0  # type: ignore[index]  # transparent band above
    assert result.getpixel((50, 50))[:3] == (0, 0, 255)  # type: ignore[index]


def test_exif_orientation_is_applied() -> None:
    # Stored 400x200, EXIF says rotate 90: the picture is 200x400 (portrait).
    image = Image.new("RGB", (400, 200), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 200, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    result = resize(encode(image, "JPEG", exif=exif.tobytes()), 100, None, "fit")
    assert (result.width, result.height) == (100, 200)
    out = decoded(result.data)
    assert out.size == (100, 200)
    assert 0x0112 not in out.getexif() or out.getexif()[0x0112] == 1


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_alpha_is_kept(fmt: str) -> None:
    source = encode(Image.new("RGBA", (120, 80), (0, 128, 0, 100)), fmt)
    out = decoded(resize(source, 60, 40).data)
    assert out.mode == "RGBA"
    assert abs(out.getpixel((30, 20))[3] - 100) <= 2  # type: ignore[index]


def test_alpha_flattens_onto_white_for_jpeg() -> None:
    source = encode(Image.new("RGBA", (100, 100), (0, 0, 0, 0)), "PNG")
    result = resize(source, 10, 10, format="jpeg")
    assert result.content_type == "image/jpeg"
    assert min(decoded(result.data).convert("RGB").getpixel((5, 5))) > 240  # type: ignore[arg-type]


@pytest.mark.parametrize(("fmt", "content_type"), [("png", "image/png"), ("webp", "image/webp"), ("gif", "image/gif")])
def test_format_override(fmt: str, content_type: str) -> None:
    result = resize(JPEG_400x300, 40, 30, format=fmt)
    assert result.content_type == content_type
    assert decoded(result.data).format == fmt.upper()


def test_palette_and_gif_sources() -> None:
    palette = Image.new("P", (64, 64))
    palette.putpalette([i % 256 for i in range(768)])
    assert resize(encode(palette, "GIF"), 16, 16).content_type == "image/gif"
    assert resize(encode(palette, "PNG"), 16, 16).content_type == "image/png"


def test_refusals_have_stable_codes() -> None:
    with pytest.raises(NotAnImage) as e1:
        resize(b"GIF? no, just text" * 10, 10, 10)
    assert e1.value.code == "not_an_image"
    with pytest.raises(TooManyPixels):
        resize(JPEG_400x300, 10, 10, max_pixels=400 * 300 - 1)
    with pytest.raises(CorruptImage):
        resize(JPEG_400x300[:300], 10, 10)
    with pytest.raises(InvalidRequest):
        resize(JPEG_400x300, 10, 10, mode="squash")
    with pytest.raises(InvalidRequest):
        resize(JPEG_400x300, None, None)
    with pytest.raises(InvalidRequest):
        resize(JPEG_400x300, 0, 10)
