"""Turn a multipart upload into a resize order, or say exactly what is wrong with it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from werkzeug.datastructures import FileStorage

from common.settings import Settings
from producer_api.errors import ApiError
from producer_api.form import validated_options
from schemas.events import variant_names_problem
from vocabulary import options as declared
from vocabulary.errors import ResizeError
from vocabulary.options import (
    AUTO,
    HTTP_OPTIONS,
    OUTPUT_FORMATS,
    RULES,
    ResizeOptions,
    parse_focus,
)
from vocabulary.probe import ImageInfo, probe


@dataclass(frozen=True)
class ResizeOrder:
    # The one output, or the first variant's options (for readers of the event that know no variants).
    options: ResizeOptions
    # Several named outputs from one upload; empty: the one output above.
    variants: tuple[NamedOrder, ...] = ()
    # Where to POST the signed outcome; checked against the webhook policy.
    callback_url: str | None = None


@dataclass(frozen=True)
class NamedOrder:
    """One variant of a multi-output request."""

    name: str
    options: ResizeOptions


_SIZE = re.compile(r"([0-9]{1,6})?x([0-9]{1,6})?")
_VARIANT_KEYS = frozenset({"name", *HTTP_OPTIONS})


def format_for(accept: str) -> str | None:
    """format=auto: the best format the client says it takes, else the source's own."""
    accepted = accept.lower()
    if "image/avif" in accepted:
        return "avif"
    if "image/webp" in accepted:
        return "webp"
    return None


def _options(form: Mapping[str, str], max_dimension: int, accept: str) -> ResizeOptions:
    """The options of one output (vocabulary.options), validated by the form model."""
    if not any((form.get(name) or "").strip() for name in ("width", "height")):
        raise ApiError(422, "missing_dimension", "width or height is required")
    fields = validated_options(form, max_dimension)
    values = {name: getattr(fields, name) for name in HTTP_OPTIONS}
    if values["format"] == "auto":
        values["format"] = format_for(accept)
    elif values["format"] == "jpg":
        values["format"] = "jpeg"
    if values["quality"] == AUTO:
        values.update(quality=None, auto_quality=True)
    if values["focus"] is not None:
        values["focus"] = parse_focus(values["focus"])
    return ResizeOptions(**values)


def auto_quality_problem(order: ResizeOrder, source_format: str) -> str | None:
    """Why quality=auto cannot apply to an output of this upload (a lossless or GIF output), or None."""
    outputs = [n.options for n in order.variants] or [order.options]
    for options in outputs:
        written = OUTPUT_FORMATS[options.format] if options.format else source_format
        problem = declared.auto_quality_problem(written) if options.auto_quality else None
        if problem:
            return f"{problem}; {RULES['quality'].message}"
    return None


def _sizes(raw: str) -> list[dict[str, str]]:
    """`100x100,400x,x50` -> one field set per size, named after it."""
    specs = []
    for token in (t.strip().lower() for t in raw.split(",")):
        match = _SIZE.fullmatch(token)
        if not match or not any(match.groups()):
            raise ApiError(422, "invalid_sizes", f"sizes must look like 100x100,400x,x50; got {token!r}")
        specs.append({"name": token, "width": match.group(1) or "", "height": match.group(2) or ""})
    return specs


# A list of flat objects is two levels deep; ten variants of every field fit well within the size.
MAX_VARIANTS_DEPTH = 2
MAX_VARIANTS_CHARS = 16 * 1024


def nesting_within(raw: str, limit: int) -> bool:
    """Whether the JSON text nests lists and objects at most `limit` deep, checked before it is parsed
    (the parser recurses per level: a deep enough text is a RecursionError, not a ValueError)."""
    depth, in_string, escaped = 0, False, False
    for char in raw:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return False
        elif char in "]}":
            depth -= 1
    return True


def _variant_specs(raw: str) -> list[dict[str, str]]:
    """The `variants` field: a JSON list of objects with the single-output fields plus a name."""
    if len(raw) > MAX_VARIANTS_CHARS:
        raise ApiError(422, "invalid_variants", f"variants is at most {MAX_VARIANTS_CHARS} characters")
    if not nesting_within(raw, MAX_VARIANTS_DEPTH):
        raise ApiError(422, "invalid_variants", "variants must be a JSON list of flat objects")
    try:
        items = json.loads(raw)
    except ValueError as e:
        raise ApiError(422, "invalid_variants", f"variants is not valid JSON: {e}") from e
    if not isinstance(items, list):
        raise ApiError(422, "invalid_variants", "variants must be a JSON list of objects")
    specs = []
    for item in items:
        if not isinstance(item, dict) or not set(item) <= _VARIANT_KEYS:
            raise ApiError(422, "invalid_variants", f"each variant is an object with keys from {sorted(_VARIANT_KEYS)}")
        if any(isinstance(v, (dict, list)) for v in item.values()):
            raise ApiError(422, "invalid_variants", "variant values are strings, numbers or booleans")
        spec = {k: ("" if v is None else str(v).lower() if isinstance(v, bool) else str(v)) for k, v in item.items()}
        spec.setdefault("name", f"{spec.get('width', '')}x{spec.get('height', '')}")
        specs.append(spec)
    return specs


def parse_order(
    form: Mapping[str, str], max_dimension: int, accept: str = "", max_variants: int | None = None
) -> ResizeOrder:
    """The resize order from the form fields: one output, or several named by `sizes` or `variants`.

    A variant's own fields win over the form's top-level mode, format, quality,
    gravity and upscale, which apply to every variant that does not set them.
    """
    sizes, variants = (form.get(name, "").strip() for name in ("sizes", "variants"))
    if not sizes and not variants:
        return ResizeOrder(_options(form, max_dimension, accept))
    if sizes and variants:
        raise ApiError(422, "invalid_variants", "give sizes or variants, not both")
    if form.get("width", "").strip() or form.get("height", "").strip():
        raise ApiError(422, "invalid_variants", "width and height go inside sizes or variants, not beside them")
    specs = _sizes(sizes) if sizes else _variant_specs(variants)
    if max_variants is None:
        max_variants = Settings.model_fields["max_variants"].default
    if not 1 <= len(specs) <= max_variants:
        raise ApiError(422, "invalid_variants", f"between 1 and {max_variants} variants per request")
    shared = {k: v for k, v in form.items() if k in _VARIANT_KEYS - {"name", "width", "height"}}
    problem = variant_names_problem([spec["name"] for spec in specs])
    if problem:
        raise ApiError(422, "invalid_variants", problem)
    named = [NamedOrder(spec["name"], _options({**shared, **spec}, max_dimension, accept)) for spec in specs]
    return ResizeOrder(named[0].options, variants=tuple(named))


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
