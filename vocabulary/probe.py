"""What an upload really is, judged by its bytes (magic numbers and a header-only open)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from vocabulary.errors import CorruptImage, NotAnImage, TooManyPixels, UnsupportedFormat

# Magic numbers of the formats accepted, checked before Pillow sees the bytes,
# so a file name or a client's Content-Type is never trusted.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"WEBP", 8, "WEBP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"BM", 0, "BMP"),
)
# ISO base media (AVIF, HEIC): `ftyp` at byte 4, then the brand.
_FTYP_BRANDS = {b"avif": "AVIF", b"avis": "AVIF", b"heic": "HEIF", b"heix": "HEIF", b"mif1": "HEIF", b"msf1": "HEIF"}

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
    "AVIF": "image/avif",
    "HEIF": "image/heic",
}


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def sniff_format(data: bytes) -> str | None:
    """The format the magic number says, or None."""
    if data[4:8] == b"ftyp" and data[8:12] in _FTYP_BRANDS:
        return _FTYP_BRANDS[data[8:12]]
    for magic, offset, fmt in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            if fmt == "WEBP" and data[:4] != b"RIFF":
                continue
            return fmt
    return None


def _register_heif() -> None:
    """HEIC through pillow-heif, when installed (it registers the HEIF format with Pillow)."""
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError as e:
        raise UnsupportedFormat("HEIC support is not installed (pip install pillow-heif)") from e


def probe(data: bytes, max_pixels: int) -> ImageInfo:
    """Check format and pixel budget from the header alone; decode nothing."""
    sniffed = sniff_format(data)
    if sniffed is None:
        raise NotAnImage("the bytes are not a JPEG, PNG, GIF, WebP, AVIF, HEIC, TIFF or BMP image")
    if sniffed == "HEIF":
        _register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[sniffed]) as image:
                width, height = image.size
    except Image.DecompressionBombWarning as e:
        raise TooManyPixels(str(e)) from e
    except UnidentifiedImageError as e:
        raise CorruptImage(f"{sniffed} header cannot be read") from e
    except Image.DecompressionBombError as e:
        raise TooManyPixels(str(e)) from e
    except (OSError, SyntaxError, ValueError) as e:
        raise CorruptImage(f"{sniffed} header is damaged: {e}") from e
    if sniffed not in CONTENT_TYPES:
        raise UnsupportedFormat(sniffed)
    if width * height > max_pixels:
        raise TooManyPixels(f"{width}x{height} is over the budget of {max_pixels} pixels")
    if width < 1 or height < 1:
        raise CorruptImage(f"{width}x{height} has no pixels")
    return ImageInfo(sniffed, width, height)
