"""The engine over a corpus made here: every input kind, orientation, colour model and hostile file."""

from __future__ import annotations

import struct
import time
import zlib

import pytest
from PIL import Image, ImageCms

from bench.corpus import animated_gif, encode, photo_like
from resize_worker.engine import resize
from tests.images import opened
from vocabulary.errors import CorruptImage, NotAnImage, TooManyPixels

PHOTO = photo_like(320, 240)
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _heic() -> bytes:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    return encode(PHOTO, "HEIF")


INPUTS = {
    "jpeg": lambda: encode(PHOTO, "JPEG"),
    "jpeg progressive": lambda: encode(PHOTO, "JPEG", progressive=True),
    "jpeg cmyk": lambda: encode(PHOTO.convert("CMYK"), "JPEG"),
    "jpeg greyscale": lambda: encode(PHOTO.convert("L"), "JPEG"),
    "png rgba": lambda: encode(PHOTO.convert("RGBA"), "PNG"),
    "png palette": lambda: encode(PHOTO.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
    "png 16-bit": lambda: encode(PHOTO.convert("L").point(lambda v: v * 256, "I").convert("I;16"), "PNG"),
    "webp": lambda: encode(PHOTO, "WEBP"),
    "webp alpha": lambda: encode(PHOTO.convert("RGBA"), "WEBP"),
    "gif": lambda: encode(PHOTO.convert("P", palette=Image.Palette.ADAPTIVE), "GIF"),
    "tiff": lambda: encode(PHOTO, "TIFF"),
    "bmp": lambda: encode(PHOTO, "BMP"),
    "avif": lambda: encode(PHOTO, "AVIF"),
    "heic": _heic,
}


@pytest.mark.parametrize("kind", INPUTS)
def test_every_input_kind_resizes(kind: str) -> None:
    result = resize(INPUTS[kind](), 80, 60, "fill")
    out = opened(result.data)
    assert out.size == (80, 60) == (result.width, result.height)
    assert (result.source_width, result.source_height) == (320, 240)
    # Colour survives: the centre is not black or white for a colourful photo.
    assert 10 < out.convert("L").resize((1, 1)).getpixel((0, 0)) < 245  # type: ignore[operator]


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "gif", "avif"])
def test_every_output_format(fmt: str) -> None:
    result = resize(encode(PHOTO, "JPEG"), 64, 48, format=fmt)
    assert opened(result.data).format == {"jpeg": "JPEG"}.get(fmt, fmt.upper())
    assert result.content_type == f"image/{fmt}"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientations(orientation: int) -> None:
    # A 300x150 picture, dark on its left half; orientation o says how it is to be shown.
    image = Image.new("RGB", (300, 150), (250, 250, 250))
    image.paste((0, 0, 0), (0, 0, 150, 150))
    exif = Image.Exif()
    exif[0x0112] = orientation
    result = resize(encode(image, "JPEG", exif=exif.tobytes()), 60, None, "fit", upscale=True)
    shown = {1: (300, 150), 2: (300, 150), 3: (300, 150), 4: (300, 150)}.get(orientation, (150, 300))
    assert (result.width, result.height) == (60, round(60 * shown[1] / shown[0]))
    out = opened(result.data)
    assert 0x0112 not in out.getexif(), "orientation applied, so the tag must go"
    # Where the dark half ends up, per the EXIF spec's transforms.
    corners = {1: "left", 2: "right", 3: "right", 4: "left", 5: "top", 6: "top", 7: "bottom", 8: "bottom"}
    w, h = out.size
    probes = {"left": (2, h // 2), "right": (w - 3, h // 2), "top": (w // 2, 2), "bottom": (w // 2, h - 3)}
    assert out.convert("L").getpixel(probes[corners[orientation]]) < 60  # type: ignore[operator]


def test_metadata_is_stripped_but_the_icc_profile_kept() -> None:
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    exif[0x8825] = {1: "N"}  # a GPS IFD
    source = encode(PHOTO, "JPEG", exif=exif.tobytes(), icc_profile=SRGB)
    for fmt in ("jpeg", "png", "webp"):
        out = opened(resize(source, 50, 50, format=fmt).data)
        assert out.info.get("icc_profile") == SRGB, fmt
        assert not out.getexif(), fmt


def test_animated_gif_keeps_every_frame_and_its_timing() -> None:
    source = animated_gif(120, 80, frames=6)
    result = resize(source, 60, None, "fit")
    out = opened(result.data)
    assert result.frames == out.n_frames == 6
    assert out.size == (60, 40)
    out.seek(3)
    assert out.info["duration"] == 60
    assert opened(resize(source, 60, None, "fit", format="webp").data).n_frames == 6
    assert opened(resize(source, 60, None, "fit", format="png").data).size == (60, 40)  # first frame only


def test_animation_over_the_frame_budget_is_refused() -> None:
    with pytest.raises(TooManyPixels):
        resize(animated_gif(40, 30, frames=12), 20, 20, max_frames=10)


def test_quality_changes_the_bytes() -> None:
    source = encode(PHOTO, "PNG")
    low, high = (len(resize(source, 200, 150, format="jpeg", quality=q).data) for q in (20, 95))
    assert low < high / 2


def test_entropy_gravity_finds_the_detail() -> None:
    # Flat grey with all the detail on the right third: an entropy crop goes right.
    image = Image.new("RGB", (600, 200), (128, 128, 128))
    image.paste(photo_like(200, 200), (400, 0))
    centred = opened(resize(encode(image, "PNG"), 100, 100, "fill").data).convert("L")
    content = opened(resize(encode(image, "PNG"), 100, 100, "fill", gravity="entropy").data).convert("L")
    assert content.entropy() > centred.entropy() + 1.0


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header_only(width: int, height: int) -> bytes:
    """A 100-byte PNG that claims width x height: a header, a scrap of data, the end."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def test_a_bomb_is_refused_from_its_header_at_once() -> None:
    bomb = _png_header_only(60000, 60000)
    started = time.perf_counter()
    with pytest.raises(TooManyPixels):
        resize(bomb, 100, 100)
    assert time.perf_counter() - started < 0.005  # the header is read, no pixel is decoded


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", NotAnImage),
        (b"hello, I am a text file called photo.jpg\n" * 3, NotAnImage),
        (encode(PHOTO, "JPEG")[:400], CorruptImage),
        (encode(PHOTO, "PNG")[:300], CorruptImage),
        (encode(PHOTO, "GIF")[:200], CorruptImage),
        (encode(PHOTO, "WEBP")[:100], CorruptImage),
    ],
    ids=["zero bytes", "text", "truncated jpeg", "truncated png", "truncated gif", "truncated webp"],
)
def test_hostile_files_fail_with_a_code(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        resize(data, 50, 50)


@pytest.mark.parametrize(("width", "height"), [(91, 60), (97, 61), (1001, 333), (333, 1001), (129, 65)])
def test_odd_sizes_with_jpeg_draft_scaling(width: int, height: int) -> None:
    """draft() rounds each side up on its own; the crop box must still fit the decoded image."""
    source = encode(photo_like(width, height), "JPEG")
    for box in (7, 13, 30, 45):
        for mode in ("fill", "fit", "stretch"):
            result = resize(source, box, box, mode)
            assert opened(result.data).size == (result.width, result.height)
