"""Writing resized frames: per-format options, alpha where the format holds it, animation kept.

- PNG is written with zlib level 1: several times faster than the default for a
  few percent more bytes.
- GIF frames are quantised by fast octree (30x faster than median cut here, and
  closer to the source); transparent pixels get a palette index of their own.
- Formats without alpha get the image composited onto white, not onto black.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from resize_worker.colour import fitting_profile, grey_to_rgb

ALPHA_FORMATS = {"PNG", "WEBP", "GIF", "AVIF"}
# Output formats that can hold an animation (PNG as APNG).
ANIMATED_FORMATS = {"GIF", "WEBP", "PNG", "AVIF"}
_DEFAULT_QUALITY = {"JPEG": 85, "WEBP": 80, "AVIF": 60}
# Formats whose encoders have no greyscale mode: grey pixels go through their profile to RGB first.
_RGB_ONLY = {"WEBP", "AVIF"}
_GIF_TRANSPARENT_INDEX = 255
# The ALPHA bit of the flags byte of WebP's VP8X chunk (byte 20 of the file).
_WEBP_ALPHA_FLAG = 0x10
# Alpha below this is transparent in a GIF (which has no partial transparency).
_GIF_ALPHA_CUTOFF = 128


@dataclass(frozen=True)
class Animation:
    """How the frames of an animated output play: one duration per frame (ms) and the loop count."""

    durations: list[float]
    loop: int = 0


def flatten(image: Image.Image) -> Image.Image:
    """For formats without alpha: composite onto white, keeping grey pixels grey."""
    if image.mode in {"RGB", "L"}:
        return image
    grey = image.mode == "LA"
    rgba = image.convert("LA" if grey else "RGBA")
    background = Image.new("L" if grey else "RGB", image.size, 255 if grey else (255, 255, 255))
    background.paste(rgba.convert("L" if grey else "RGB"), mask=rgba.getchannel("A"))
    return background


def _gif_frame(frame: Image.Image) -> Image.Image:
    """A palette frame; transparent pixels (alpha < 128) on an index of their own."""
    if frame.mode in {"L", "P"}:
        return frame
    if frame.mode == "LA":
        frame = frame.convert("RGBA")
    if frame.mode == "RGBA":
        alpha = frame.getchannel("A")
        if _lowest(alpha) < _GIF_ALPHA_CUTOFF:
            paletted = frame.convert("RGB").quantize(_GIF_TRANSPARENT_INDEX, Image.Quantize.FASTOCTREE)
            palette = (paletted.getpalette() or [])[: _GIF_TRANSPARENT_INDEX * 3]
            paletted.putpalette(palette + [0] * (768 - len(palette)))
            transparent = alpha.point(lambda a: 255 if a < _GIF_ALPHA_CUTOFF else 0)
            paletted.paste(_GIF_TRANSPARENT_INDEX, mask=transparent)
            paletted.info["transparency"] = _GIF_TRANSPARENT_INDEX
            return paletted
        frame = frame.convert("RGB")
    return frame.quantize(256, Image.Quantize.FASTOCTREE)


def quality_for(fmt: str, quality: int | None) -> int | None:
    """The encoder quality a format is written with: the one asked for, else the format's default; None: lossless."""
    if fmt not in _DEFAULT_QUALITY:
        return None
    return quality or _DEFAULT_QUALITY[fmt]


def _format_options(fmt: str, quality: int | None) -> dict[str, object]:
    options: dict[str, object] = {}
    if fmt in _DEFAULT_QUALITY:
        options["quality"] = quality_for(fmt, quality)
    if fmt == "WEBP":
        options["method"] = 4
    elif fmt == "PNG":
        options["compress_level"] = 1
    elif fmt == "AVIF":
        options["speed"] = 8
    return options


def _animation_options(fmt: str, frames: list[Image.Image], animation: Animation) -> dict[str, object]:
    options: dict[str, object] = {
        "save_all": True,
        "append_images": frames[1:],
        # APNG keeps fractions of a millisecond; the others count whole ones.
        "duration": [d if fmt == "PNG" else round(d) for d in animation.durations[: len(frames)]],
        "loop": animation.loop,
    }
    if fmt == "GIF":
        # Every frame is a whole canvas: clear to the background before the next one.
        options["disposal"] = 2
    elif fmt == "WEBP":
        # The canvas starts transparent, whatever background the source's own palette named.
        options["background"] = (0, 0, 0, 0)
    elif fmt == "PNG":
        # APNG: each whole frame replaces the last (dispose op none, blend op source).
        options.update(disposal=0, blend=0, default_image=False)
    return options


def encode(
    frames: list[Image.Image],
    fmt: str,
    quality: int | None,
    icc: bytes | None,
    animation: Animation | None = None,
) -> bytes:
    """The frames written as `fmt`; more than one frame (with `animation`) makes an animated file."""
    if fmt == "JPEG":
        frames = [flatten(frames[0])]
    elif fmt in _RGB_ONLY and frames[0].mode in {"L", "LA"}:
        frames = [grey_to_rgb(f, icc) for f in frames]
        icc = None
    elif fmt == "GIF":
        frames = [_gif_frame(f) for f in frames]
    options = _format_options(fmt, quality)
    if fmt in {"JPEG", "GIF"}:
        # Pillow writes the source's comment (JPEG COM, GIF comment extension) from the frame's info
        # unless told otherwise: metadata, dropped like EXIF.
        options["comment"] = b""
    if fmt != "GIF":
        # The colours' meaning, or explicitly none: encoders fall back to the frame's own info, which may
        # still hold the source's profile. All other metadata is dropped.
        options["icc_profile"] = fitting_profile(icc, frames[0].mode)
    if len(frames) > 1 and animation is not None:
        options.update(_animation_options(fmt, frames, animation))
    out = io.BytesIO()
    frames[0].save(out, format=fmt, **options)
    if fmt == "WEBP" and len(frames) > 1 and any(_has_alpha(f) for f in frames):
        return _mark_webp_alpha(out.getvalue())
    return out.getvalue()


def _has_alpha(frame: Image.Image) -> bool:
    return frame.mode in {"RGBA", "LA"} and _lowest(frame.getchannel("A")) < 255


def _lowest(band: Image.Image) -> int:
    low, _ = band.getextrema()  # one band: (lowest, highest)
    assert isinstance(low, int)
    return low


def _mark_webp_alpha(data: bytes) -> bytes:
    """Set the extended header's alpha flag, which libwebp's animation encoder can leave unset.

    With lossy frames whose changed regions are opaque it writes no alpha flag even
    though the canvas around them is transparent; readers that trust the flag
    (Pillow among them) then show the transparent areas black.
    """
    if data[12:16] != b"VP8X":
        return data
    flags = data[20] | _WEBP_ALPHA_FLAG
    return data[:20] + bytes([flags]) + data[21:]
