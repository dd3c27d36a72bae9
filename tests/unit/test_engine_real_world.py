"""Each class of wrong output that real-world files showed, pinned by a small file made here."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageCms, ImageSequence, ImageStat

from bench.corpus import encode, photo_like
from resize_worker.colour import profile_space
from resize_worker.engine import resize
from tests.corpus.pillow_suite import icc_profile
from tests.images import opened
from vocabulary.errors import CorruptImage

# A CMYK profile where the system has one (Ghostscript's); LittleCMS cannot make one.
CMYK_PROFILE = Path("/usr/share/color/icc/ghostscript/default_cmyk.icc")


def half_transparent(mode: str = "RGBA") -> Image.Image:
    """Opaque red on the left half, fully transparent on the right."""
    image = Image.new("RGBA", (100, 60), (200, 30, 30, 255))
    image.paste((0, 0, 0, 0), (50, 0, 100, 60))
    return image.convert(mode) if mode != "RGBA" else image


def transparent_share(image: Image.Image) -> float:
    alpha = image.convert("RGBA").getchannel("A")
    return alpha.histogram()[0] / (image.width * image.height)


@pytest.mark.parametrize("fmt", ["gif", "png", "webp"])
def test_transparency_is_kept_in_every_format_that_holds_it(fmt: str) -> None:
    result = opened(resize(encode(half_transparent(), "PNG"), 50, 30, "fit", fmt).data)
    assert 0.45 < transparent_share(result) < 0.55
    assert result.convert("RGBA").getpixel((10, 15))[3] == 255  # type: ignore[index]


def test_a_transparent_gif_stays_transparent_as_gif() -> None:
    source = half_transparent().convert("P", palette=Image.Palette.ADAPTIVE)
    result = opened(resize(encode(source, "GIF", transparency=source.getpixel((99, 0))), 50, 30, "fit").data)
    assert result.format == "GIF" and "transparency" in result.info
    assert 0.45 < transparent_share(result) < 0.55


def test_a_trns_colour_key_becomes_alpha_in_webp() -> None:
    source = Image.new("RGB", (100, 60), (0, 255, 52))
    source.paste((200, 30, 30), (0, 0, 50, 60))
    result = opened(resize(encode(source, "PNG", transparency=(0, 255, 52)), 50, 30, "fit", "webp").data)
    assert result.mode == "RGBA"
    assert 0.45 < transparent_share(result) < 0.55


def test_tiff_orientation_is_applied_once() -> None:
    wide = Image.new("RGB", (300, 100), (255, 255, 255))
    exif = Image.Exif()
    exif[0x0112] = 6
    result = resize(encode(wide, "TIFF", exif=exif), 200, 200, "fit", "png")
    # Pillow's TIFF reader turns the pixels on load: upright, the picture is 100 wide, 300 high.
    assert (result.width, result.height) == (67, 200)


def test_sixteen_bit_big_endian_greyscale_is_resized() -> None:
    grey = Image.linear_gradient("L").resize((64, 64)).convert("I").point(lambda v: v * 256).convert("I;16B")
    result = opened(resize(encode(grey, "TIFF"), 32, 32, "fit", "png").data)
    assert result.mode == "L"
    low, high = result.getextrema()
    assert isinstance(low, int) and isinstance(high, int)
    assert low < 20 and high > 230  # scaled to 8 bits, not clipped


def test_a_grey_profile_converts_grey_pixels_when_the_output_must_be_rgb() -> None:
    grey_profile = icc_profile("sGrey-v2-nano.icc")
    source = Image.linear_gradient("L").resize((64, 64))
    data = encode(source, "JPEG", icc_profile=grey_profile, quality=95)
    as_webp = opened(resize(data, 32, 32, "fit", "webp").data)
    assert as_webp.mode == "RGB" and "icc_profile" not in as_webp.info
    as_jpeg = opened(resize(data, 32, 32, "fit").data)
    assert as_jpeg.mode == "L" and profile_space(as_jpeg.info["icc_profile"]) == "GRAY"
    expected = ImageCms.profileToProfile(
        as_jpeg, ImageCms.ImageCmsProfile(io.BytesIO(grey_profile)), ImageCms.createProfile("sRGB"), outputMode="RGB"
    )
    assert isinstance(expected, Image.Image)
    assert max(ImageStat.Stat(ImageChops.difference(expected, as_webp)).mean) < 4


def test_a_profile_of_another_colour_space_is_not_copied() -> None:
    grey_profile = icc_profile("sGrey-v2-nano.icc")
    rgb = photo_like(64, 48)
    result = opened(resize(encode(rgb, "PNG", icc_profile=grey_profile), 32, 24, "fit").data)
    assert "icc_profile" not in result.info


@pytest.mark.skipif(not CMYK_PROFILE.exists(), reason="no CMYK ICC profile on this system")
def test_cmyk_goes_to_srgb_through_its_profile() -> None:
    cmyk_profile = CMYK_PROFILE.read_bytes()
    source = Image.new("CMYK", (64, 64), (0, 80, 200, 0))
    result = opened(resize(encode(source, "JPEG", icc_profile=cmyk_profile, quality=95), 32, 32, "fit").data)
    assert result.mode == "RGB" and "icc_profile" not in result.info
    expected = ImageCms.profileToProfile(
        source, ImageCms.ImageCmsProfile(io.BytesIO(cmyk_profile)), ImageCms.createProfile("sRGB"), outputMode="RGB"
    )
    assert isinstance(expected, Image.Image)
    want, got = expected.getpixel((32, 32)), result.getpixel((16, 16))
    assert max(abs(a - b) for a, b in zip(want, got, strict=True)) < 8  # type: ignore[arg-type]
    naive = source.convert("RGB").getpixel((0, 0))
    assert naive != got


def _frames(colours: list[tuple[int, int, int]]) -> list[Image.Image]:
    return [Image.new("RGB", (80, 40), colour) for colour in colours]


@pytest.mark.parametrize(("source_format", "out"), [("PNG", None), ("PNG", "webp"), ("AVIF", None), ("GIF", "png")])
def test_animation_is_kept_with_its_timing(source_format: str, out: str | None) -> None:
    frames = _frames([(255, 0, 0), (0, 255, 0), (0, 0, 255)])
    durations = [40, 120, 200]
    data = encode(frames[0], source_format, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    result = opened(resize(data, 40, 20, "fit", out).data)
    played = []
    for frame in ImageSequence.Iterator(result):
        frame.load()
        played.append(round(frame.info.get("duration", 0)))
    assert played == durations


def test_zero_millisecond_frames_stay_zero() -> None:
    frames = _frames([(255, 0, 0), (0, 255, 0)])
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=[0, 0])
    result = opened(resize(data, 40, 20, "fit", "webp").data)
    assert result.n_frames == 2  # type: ignore[attr-defined]
    played = []
    for frame in ImageSequence.Iterator(result):
        frame.load()
        played.append(frame.info["duration"])
    assert played == [0, 0]


def _without_width_in_second_frame(tiff: bytes) -> bytes:
    """A two-page little-endian TIFF whose second page has lost its ImageWidth tag."""
    data = bytearray(tiff)
    first = struct.unpack_from("<I", data, 4)[0]
    count = struct.unpack_from("<H", data, first)[0]
    second = struct.unpack_from("<I", data, first + 2 + 12 * count)[0]
    for entry in range(struct.unpack_from("<H", data, second)[0]):
        at = second + 2 + 12 * entry
        if struct.unpack_from("<H", data, at)[0] == 256:
            struct.pack_into("<H", data, at, 65000)
    return bytes(data)


def test_a_tiff_page_without_dimensions_is_a_corrupt_image() -> None:
    pages = _frames([(255, 0, 0), (0, 255, 0)])
    broken = _without_width_in_second_frame(encode(pages[0], "TIFF", save_all=True, append_images=pages[1:]))
    with pytest.raises(CorruptImage):
        resize(broken, 40, 20, "fit")


@pytest.mark.parametrize("fmt", ["JPEG", "GIF"])
def test_a_comment_in_the_source_is_dropped_like_other_metadata(fmt: str) -> None:
    out = io.BytesIO()
    photo_like(64, 48).save(out, fmt, comment=b"taken at 12 Private Road by Jane Doe")
    made = resize(out.getvalue(), 32, format=fmt.lower())
    assert b"Jane Doe" not in made.data
    assert "comment" not in opened(made.data).info
