"""Every image of Pillow's own test suite through the upload check and the engine, properties checked per file.

Files nobody here wrote: odd modes, broken headers, fuzzer finds, animations,
orientations, profiles. Each file is resized three ways (fill, fit, and fit in
another format); for each output the test checks that it opens, has the size
the plan promises for the upright source, keeps transparency where the format
holds it, carries a profile only of its own colour space, converts CMYK and
grey through their profiles, and keeps animation and frame timing. A file is
either handled or refused with the code listed for it below, with the reason.
"""

from __future__ import annotations

import io
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageCms, ImageOps, ImageSequence, ImageStat

from resize_worker.colour import profile_space
from resize_worker.engine import DEFAULT_MAX_PIXELS, Target, output_format, resize_many
from resize_worker.geometry import plan
from tests.corpus.pillow_suite import files, images_dir
from vocabulary.errors import ResizeError
from vocabulary.probe import probe, sniff_format

SUITE = images_dir()
ALL_FILES = files(SUITE)
ACCEPTED = [p for p in ALL_FILES if sniff_format(p.read_bytes()[:16]) is not None]
OUTCOMES: Counter[str] = Counter()

_TRUNCATED = "cut short in the suite on purpose: the pixel data ends early"
_FUZZ = "a fuzzer's find: the header or its data is inconsistent"
_BMP_UNSUPPORTED = "a BMP variant Pillow does not decode (the bmpsuite's 'questionable' or 'bad' files)"
# Files refused on purpose, each with the code clients see and the reason.
EXPECTED_REFUSALS: dict[str, tuple[str, str]] = {
    "broken.png": ("corrupt_image", "not a PNG past its signature"),
    "broken_data_stream.png": ("corrupt_image", "the zlib stream is damaged"),
    "decompression_bomb.gif": ("too_many_pixels", "a 4.3-gigapixel canvas in a small file"),
    "decompression_bomb_extents.gif": ("too_many_pixels", "a frame's extents make a 4.3-gigapixel canvas"),
    "hopper_unknown_pixel_mode.tif": ("corrupt_image", "a TIFF pixel layout no reader knows"),
    "hopper_webp.tif": ("corrupt_image", "WebP-in-TIFF compression, not built into the system libtiff"),
    "l2rgb_read.bmp": ("too_many_pixels", "151 megapixels declared, over Pillow's own bomb limit"),
    "libtiff_segfault.tif": ("corrupt_image", _FUZZ),
    "oom-225817ca0f8c663be7ab4b9e717b02c661e66834.tif": ("corrupt_image", _FUZZ),
    "png_decompression_dos.png": ("corrupt_image", "a text chunk that decompresses without bound"),
    "tiff_overflow_rows_per_strip.tif": ("corrupt_image", _FUZZ),
    "tiff_tiled_jpeg_oob_read.tif": ("corrupt_image", _FUZZ),
    "timeout-6646305047838720": ("corrupt_image", _FUZZ),
    "truncated_end_chunk.png": ("corrupt_image", _TRUNCATED),
    "truncated_image.png": ("corrupt_image", _TRUNCATED),
    "truncated_jpeg.jpg": ("corrupt_image", _TRUNCATED),
    "ultrahdr.jpg": ("corrupt_image", _TRUNCATED),
    "unknown_compression_method.png": ("corrupt_image", "a PNG compression method that does not exist"),
    "zero_width.gif": ("corrupt_image", "a 0-pixel-wide image"),
    "apng/syntax_num_frames_zero.png": ("corrupt_image", "an APNG that declares no frames and has no default image"),
    "bmp/b/badbitcount.bmp": ("corrupt_image", _BMP_UNSUPPORTED),
    "bmp/b/badheadersize.bmp": ("corrupt_image", _BMP_UNSUPPORTED),
    "bmp/b/badpalettesize.bmp": ("corrupt_image", _BMP_UNSUPPORTED),
    "bmp/b/badwidth.bmp": ("too_many_pixels", "a width of 2^31 declared"),
    "bmp/b/reallybig.bmp": ("too_many_pixels", "6 terapixels declared"),
    "bmp/b/shortfile.bmp": ("corrupt_image", _TRUNCATED),
    "bmp/q/pal2.bmp": ("corrupt_image", _BMP_UNSUPPORTED),
    "bmp/q/pal8os2v2-16.bmp": ("corrupt_image", _BMP_UNSUPPORTED),
    "bmp/q/pal8oversizepal.bmp": ("corrupt_image", _BMP_UNSUPPORTED),
    "bmp/q/rgb16-231.bmp": ("corrupt_image", _BMP_UNSUPPORTED),
    "bmp/q/rgb24jpeg.bmp": ("corrupt_image", "JPEG data inside a BMP, which Pillow does not decode"),
    "bmp/q/rgb24png.bmp": ("corrupt_image", "PNG data inside a BMP, which Pillow does not decode"),
    "bmp/q/rgb32-111110.bmp": ("corrupt_image", _BMP_UNSUPPORTED),
    "bmp/q/rgba16-4444.bmp": ("corrupt_image", _BMP_UNSUPPORTED),
    "bmp/q/rgba32abf.bmp": ("corrupt_image", _BMP_UNSUPPORTED),
    "bmp/g/rgb32bf.bmp": ("corrupt_image", _BMP_UNSUPPORTED),
}
# Files whose pictures are the same once upright: (file, its upright reference).
UPRIGHT_REFERENCES = [
    (f"hopper_orientation_{n}.{ext}", f"hopper.{ext}") for n in range(2, 9) for ext in ("jpg", "webp")
]
UPRIGHT_REFERENCES += [(f"g4_orientation_{n}.tif", "g4_orientation_1.tif") for n in range(2, 9)]
SOURCE_FORMATS_THAT_ANIMATE = {"GIF", "WEBP", "PNG", "AVIF"}
_GREY_MODES = {"L", "LA"}
_RGB_MODES = {"RGB", "RGBA", "P"}


def _targets(source_format: str) -> dict[str, Target]:
    other = "png" if source_format == "WEBP" else "webp"
    return {"fill": Target(200, 200, "fill"), "fit": Target(200, 200, "fit"), other: Target(200, 200, "fit", other)}


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _upright_reference(data: bytes) -> Image.Image:
    """The source's first frame upright, as Pillow alone gives it: the yardstick for size and alpha."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = Image.open(io.BytesIO(data))
        try:
            image.load()
        except (SyntaxError, OSError):
            # A broken APNG: its still image, read again from the start.
            image.seek(0)
            image.load()
        return ImageOps.exif_transpose(image)


def _has_transparency(image: Image.Image) -> bool:
    if image.mode not in {"RGBA", "LA", "PA", "RGBa", "La"} and "transparency" not in image.info:
        return False
    try:
        alpha = image.convert("RGBA").getchannel("A")
    except (ValueError, OSError):
        return False
    low, _ = alpha.getextrema()
    return bool(low < 128)  # type: ignore[operator]


def _timeline(image: Image.Image) -> tuple[list[float], int]:
    """Each animation frame's duration, and how many frames differ from the one before.

    An APNG's default image is shown only where APNG is not understood: not a frame of the animation.
    """
    durations, distinct, previous = [], 0, None
    for index, frame in enumerate(ImageSequence.Iterator(image)):
        if index == 0 and image.info.get("default_image"):
            continue
        frame.load()  # WebP and AVIF readers know a frame's duration once it is decoded
        durations.append(float(frame.info.get("duration", 0)))
        pixels = frame.convert("RGBA")
        if previous is None or ImageChops.difference(pixels, previous).getbbox() is not None:
            distinct += 1
        previous = pixels
    return durations, distinct


def _check_transparency(reference: Image.Image, output: Image.Image, where: str) -> None:
    """Pixels transparent in the source (alpha < 128) are transparent in the output and the others opaque."""
    expected = reference.convert("RGBA").getchannel("A").resize(output.size, Image.Resampling.BOX)
    assert output.mode in {"RGBA", "LA", "PA", "P"} or "transparency" in output.info, f"{where}: alpha lost"
    got = output.convert("RGBA").getchannel("A")

    def opaque(alpha: Image.Image) -> Image.Image:
        return alpha.point(lambda a: 255 if a >= 128 else 0)

    differ = ImageChops.difference(opaque(expected), opaque(got))
    share = ImageStat.Stat(differ).mean[0] / 255
    assert share < 0.05, f"{where}: {share:.1%} of the pixels changed between transparent and opaque"


def _mean_difference(a: Image.Image, b: Image.Image) -> float:
    return max(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean)


def _check_profile(output: Image.Image, reference: Image.Image, where: str) -> None:
    icc = output.info.get("icc_profile")
    if icc:
        space = profile_space(icc)
        expected = "GRAY" if output.mode in _GREY_MODES else "RGB" if output.mode in _RGB_MODES else output.mode
        assert space == expected, f"{where}: a {space} profile on {output.mode} pixels"
    source_icc = reference.info.get("icc_profile")
    source_space = profile_space(source_icc)
    if not source_icc or source_space not in {"CMYK", "GRAY"} or output.mode not in {"RGB", "RGBA"}:
        return
    # The output's colours are the source's through its profile into sRGB (LittleCMS), resized.
    rgb_reference = ImageCms.profileToProfile(
        reference.convert("L" if source_space == "GRAY" else "CMYK"),
        ImageCms.ImageCmsProfile(io.BytesIO(source_icc)),
        ImageCms.createProfile("sRGB"),
        outputMode="RGB",
    )
    assert isinstance(rgb_reference, Image.Image)
    difference = _mean_difference(rgb_reference.resize(output.size, Image.Resampling.LANCZOS), output)
    assert difference < 8, f"{where}: colours {difference:.1f} off the profile's conversion to sRGB"


def _check_animation(data: bytes, source_format: str, output: Image.Image, fmt: str, where: str) -> None:
    # The frame count as the file declares it (an APNG's reader may find more once it reads further).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = Image.open(io.BytesIO(data))
        frames = getattr(source, "n_frames", 1)
    if frames < 2 or source_format not in SOURCE_FORMATS_THAT_ANIMATE or fmt not in SOURCE_FORMATS_THAT_ANIMATE:
        return
    # Encoders merge identical neighbouring frames (adding their durations): compare the timeline.
    try:
        expected, distinct = _timeline(source)
    except (SyntaxError, OSError, EOFError):
        # A broken animation becomes a still of its first image, as browsers show it.
        assert getattr(output, "n_frames", 1) == 1, f"{where}: frames of a broken animation"
        return
    if distinct < 2:
        return
    assert getattr(output, "n_frames", 1) > 1, f"{where}: {frames} frames flattened to one"
    got, _ = _timeline(output)
    tolerance = 10 * len(expected)  # GIF keeps centiseconds
    assert abs(sum(expected) - sum(got)) <= tolerance, f"{where}: plays {sum(got)} ms, source {sum(expected)} ms"


def _check(path: Path) -> Iterator[str]:
    """Run one file through the upload check and the three targets; yield the outcome of each."""
    data = path.read_bytes()
    name = path.relative_to(SUITE).as_posix()
    try:
        info = probe(data, DEFAULT_MAX_PIXELS)
        targets = _targets(info.format)
        outputs = resize_many(data, list(targets.values()))
    except ResizeError as e:
        assert name in EXPECTED_REFUSALS, f"{name} refused ({e.code}: {e}) but not listed as an expected refusal"
        assert e.code == EXPECTED_REFUSALS[name][0], f"{name}: {e.code} ({e}), listed as {EXPECTED_REFUSALS[name][0]}"
        yield f"refused: {e.code}"
        return
    assert name not in EXPECTED_REFUSALS, f"{name} is listed as refused ({EXPECTED_REFUSALS[name][1]}) but was resized"
    reference = _upright_reference(data)
    for (label, target), result in zip(targets.items(), outputs, strict=True):
        where = f"{name} [{label}]"
        output = _open(result.data)
        fmt = output_format(target.format, info.format)
        assert output.format == fmt, f"{where}: written as {output.format}, expected {fmt}"
        assert target.width and target.height
        expected_size = plan(*reference.size, target.width, target.height, target.mode).canvas
        assert output.size == expected_size, f"{where}: {output.size}, expected {expected_size} for {reference.size}"
        if label != "fill" and fmt in {"PNG", "WEBP", "GIF", "AVIF"} and _has_transparency(reference):
            _check_transparency(reference, output, where)
        _check_profile(output, reference, where)
        _check_animation(data, info.format, output, fmt, where)
        yield "ok"


@pytest.mark.parametrize("path", ACCEPTED, ids=lambda p: p.relative_to(SUITE).as_posix())
def test_every_file_is_resized_right_or_refused_with_its_code(path: Path) -> None:
    for outcome in _check(path):
        OUTCOMES[outcome] += 1


def test_files_of_formats_not_accepted_are_refused_as_not_images() -> None:
    others = [p for p in ALL_FILES if p not in set(ACCEPTED)]
    for path in others:
        with pytest.raises(ResizeError) as refused:
            probe(path.read_bytes(), DEFAULT_MAX_PIXELS)
        assert refused.value.code == "not_an_image", path
    OUTCOMES["refused: not_an_image (a format not accepted)"] += len(others)


def test_every_listed_refusal_is_a_file_of_the_suite() -> None:
    names = {p.relative_to(SUITE).as_posix() for p in ACCEPTED}
    assert set(EXPECTED_REFUSALS) <= names


@pytest.mark.parametrize(("rotated", "upright"), UPRIGHT_REFERENCES)
def test_orientation_matches_the_upright_reference(rotated: str, upright: str) -> None:
    target = [Target(64, 64, "fit")]
    got = _open(resize_many((SUITE / rotated).read_bytes(), target)[0].data)
    want = _open(resize_many((SUITE / upright).read_bytes(), target)[0].data)
    assert got.size == want.size
    assert _mean_difference(got, want) < 12, f"{rotated} is not upright"
