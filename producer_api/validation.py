"""Turn a multipart upload into a resize order, or say exactly what is wrong with it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from werkzeug.datastructures import FileStorage

from producer_api.errors import ApiError
from resize_worker.engine import OUTPUT_FORMATS
from resize_worker.errors import ResizeError
from resize_worker.geometry import CONTENT_GRAVITIES, GRAVITIES, MODES
from resize_worker.probe import ImageInfo, probe

_ASCII_INTEGER = re.compile(r"[0-9]{1,6}")


@dataclass(frozen=True)
class ResizeOrder:
    width: int | None
    height: int | None
    mode: str
    format: str | None
    quality: int | None = None
    gravity: str = "centre"
    upscale: bool | None = None


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def format_for(accept: str) -> str | None:
    """format=auto: the best format the client says it takes, else the source's own."""
    accepted = accept.lower()
    if "image/avif" in accepted:
        return "avif"
    if "image/webp" in accepted:
        return "webp"
    return None


def _dimension(form: Mapping[str, str], name: str, maximum: int, code: str = "invalid_dimension") -> int | None:
    raw = form.get(name)
    if raw is None or raw.strip() == "":
        return None
    text = raw.strip()
    # ASCII digits only: str.isdigit() and int() also accept other scripts' digits.
    if not _ASCII_INTEGER.fullmatch(text) or not 1 <= int(text) <= maximum:
        raise ApiError(422, code, f"{name} must be an integer between 1 and {maximum}")
    value = int(text)
    return value


def parse_order(form: Mapping[str, str], max_dimension: int, accept: str = "") -> ResizeOrder:
    """Width, height, mode, format, quality, gravity and upscale from the form fields."""
    width = _dimension(form, "width", max_dimension)
    height = _dimension(form, "height", max_dimension)
    if width is None and height is None:
        raise ApiError(422, "missing_dimension", "width or height is required")
    mode = (form.get("mode") or "fill").strip().lower()
    if mode not in MODES:
        raise ApiError(422, "invalid_mode", f"mode must be one of {', '.join(MODES)}")
    fmt = (form.get("format") or "").strip().lower() or None
    if fmt == "auto":
        fmt = format_for(accept)
    elif fmt is not None and fmt not in OUTPUT_FORMATS:
        choices = ", ".join(sorted([*OUTPUT_FORMATS, "auto"]))
        raise ApiError(422, "invalid_format", f"format must be one of {choices}")
    if fmt == "jpg":
        fmt = "jpeg"
    quality = _dimension(form, "quality", 100, code="invalid_quality")
    gravity = (form.get("gravity") or "centre").strip().lower()
    if gravity not in GRAVITIES and gravity not in CONTENT_GRAVITIES:
        raise ApiError(422, "invalid_gravity", f"gravity must be one of {', '.join([*GRAVITIES, *CONTENT_GRAVITIES])}")
    raw_upscale = (form.get("upscale") or "").strip().lower()
    if raw_upscale and raw_upscale not in _BOOLEANS:
        raise ApiError(422, "invalid_upscale", "upscale must be true or false")
    upscale = _BOOLEANS[raw_upscale] if raw_upscale else None
    return ResizeOrder(width, height, mode, fmt, quality, gravity, upscale)


def read_image(
    files: Mapping[str, FileStorage], max_pixels: int, allowed: frozenset[str] | None = None
) -> tuple[bytes, ImageInfo]:
    """The uploaded bytes and what they really are; the file name is never looked at."""
    upload = files.get("file")
    if upload is None:
        raise ApiError(422, "missing_file", "a multipart field named 'file' is required")
    data = upload.read()
    if not data:
        raise ApiError(422, "empty_file", "the uploaded file is empty")
    try:
        info = probe(data, max_pixels)
    except ResizeError as e:
        raise ApiError(422, e.code, str(e)) from e
    if allowed is not None and info.format not in allowed:
        raise ApiError(422, "format_not_allowed", f"{info.format} uploads are not accepted here")
    return data, info
