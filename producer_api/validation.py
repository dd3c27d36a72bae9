"""Turn a multipart upload into a resize order, or say exactly what is wrong with it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from werkzeug.datastructures import FileStorage

from producer_api.errors import ApiError
from resize_worker.engine import OUTPUT_FORMATS
from resize_worker.errors import ResizeError
from resize_worker.geometry import MODES
from resize_worker.probe import ImageInfo, probe

_ASCII_INTEGER = re.compile(r"[0-9]{1,6}")


@dataclass(frozen=True)
class ResizeOrder:
    width: int | None
    height: int | None
    mode: str
    format: str | None


def _dimension(form: Mapping[str, str], name: str, maximum: int) -> int | None:
    raw = form.get(name)
    if raw is None or raw.strip() == "":
        return None
    text = raw.strip()
    # ASCII digits only: str.isdigit() and int() also accept other scripts' digits.
    if not _ASCII_INTEGER.fullmatch(text):
        raise ApiError(422, "invalid_dimension", f"{name} must be an integer between 1 and {maximum}")
    value = int(text)
    if not 1 <= value <= maximum:
        raise ApiError(422, "invalid_dimension", f"{name} must be an integer between 1 and {maximum}")
    return value


def parse_order(form: Mapping[str, str], max_dimension: int) -> ResizeOrder:
    """Width, height, mode and format from the form fields."""
    width = _dimension(form, "width", max_dimension)
    height = _dimension(form, "height", max_dimension)
    if width is None and height is None:
        raise ApiError(422, "missing_dimension", "width or height is required")
    mode = (form.get("mode") or "fill").strip().lower()
    if mode not in MODES:
        raise ApiError(422, "invalid_mode", f"mode must be one of {', '.join(MODES)}")
    fmt = (form.get("format") or "").strip().lower() or None
    if fmt is not None and fmt not in OUTPUT_FORMATS:
        raise ApiError(422, "invalid_format", f"format must be one of {', '.join(sorted(OUTPUT_FORMATS))}")
    if fmt == "jpg":
        fmt = "jpeg"
    return ResizeOrder(width, height, mode, fmt)


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
