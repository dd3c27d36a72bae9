"""What a resize can be asked for: the options of one output, declared once.

`ResizeOptions` is the declaration. Each field carries its rule (the `422`
code, the message, the description people read); the upload form's model,
the variants' keys, the engine's and the Python client's keywords and the
OpenAPI document are made from it, and tests check that the events' records
(`schemas.events`, the `.avsc` files) and docs/EVENTS.md carry every field.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from schemas.events import FocalPoint
from vocabulary.errors import InvalidRequest

MODES = ("fill", "fit", "pad", "stretch")

# Where a fill crop sits on the free axis: 0 = left/top, 0.5 = centre, 1 = right/bottom.
GRAVITIES: dict[str, tuple[float, float]] = {
    "centre": (0.5, 0.5),
    "center": (0.5, 0.5),
    "north": (0.5, 0.0),
    "south": (0.5, 1.0),
    "east": (1.0, 0.5),
    "west": (0.0, 0.5),
    "northeast": (1.0, 0.0),
    "northwest": (0.0, 0.0),
    "southeast": (1.0, 1.0),
    "southwest": (0.0, 1.0),
}
# Chosen from the picture itself: faces (falling back to smart), what draws the eye, the most detail.
CONTENT_GRAVITIES = ("face", "smart", "entropy")
ALL_GRAVITIES = (*GRAVITIES, *CONTENT_GRAVITIES)

# The `format` values a request may name, and the Pillow format each one writes.
OUTPUT_FORMATS = {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF", "avif": "AVIF"}
# Lossy formats whose quality can be chosen per image (quality=auto).
AUTO_QUALITY_FORMATS = frozenset({"JPEG", "WEBP", "AVIF"})

QUALITY_RANGE = (1, 100)
# The `quality` value that asks for the smallest file that still looks right.
AUTO = "auto"


@dataclass(frozen=True)
class Rule:
    """How one option is given over HTTP and what its mistakes are called."""

    code: str
    message: str
    doc: str
    # Whether a form field (and a variant key) of its own name sets it; False: another one does (quality=auto).
    http: bool = True


def _option(default: Any, code: str, message: str, doc: str, http: bool = True) -> Any:
    return field(default=default, metadata={"rule": Rule(code, message, doc, http)})


@dataclass(frozen=True)
class ResizeOptions:
    """The options of one output: the HTTP request's, a variant's, and the engine's target.

    The events carry the same fields flat (the Avro contract); `of` and `fields`
    are the one mapping between the two shapes.
    """

    width: int | None = _option(
        None, "invalid_dimension", "width must be an integer between 1 and {max_dimension}", "Output width in pixels."
    )
    height: int | None = _option(
        None, "invalid_dimension", "height must be an integer between 1 and {max_dimension}", "Output height in pixels."
    )
    mode: str = _option(
        "fill",
        "invalid_mode",
        "mode must be one of " + ", ".join(MODES),
        "fill: crop to the exact size; fit: inside it; pad: inside, padded to it; stretch: to it.",
    )
    format: str | None = _option(
        None,
        "invalid_format",
        "format must be one of " + ", ".join(sorted([*OUTPUT_FORMATS, "auto"])),
        "Output format; auto: the best the client's Accept header names; unset: the source's own.",
    )
    quality: int | None = _option(
        None,
        "invalid_quality",
        "quality must be an integer between 1 and 100, or auto",
        "Encoder quality 1-100 (JPEG, WebP, AVIF); auto: the smallest file whose perceptual score still meets "
        "AUTO_QUALITY_TARGET.",
    )
    gravity: str = _option(
        "centre",
        "invalid_gravity",
        "gravity must be one of " + ", ".join(ALL_GRAVITIES),
        "Where a fill crop sits: a compass point, centre, face (faces, else smart), smart (what draws the eye) "
        "or entropy (the most detail).",
    )
    upscale: bool | None = _option(
        None, "invalid_upscale", "upscale must be true or false", "Enlarge a smaller source (default: fill only)."
    )
    focus: FocalPoint | None = _option(
        None,
        "invalid_focus",
        "focus must be X,Y with both between 0 and 1",
        "The client's focal point as X,Y relative to the upright source (0,0 top left; 1,1 bottom right): a fill "
        "crop is centred on it as far as the frame allows. Wins over gravity.",
    )
    auto_quality: bool = _option(
        False,
        "invalid_quality",
        "quality must be an integer between 1 and 100, or auto",
        "Set by quality=auto.",
        http=False,
    )

    @classmethod
    def of(cls, holder: object) -> ResizeOptions:
        """The options of anything that carries them as attributes: a ResizeRequested, a VariantSpec."""
        return cls(**{f.name: getattr(holder, f.name) for f in dataclasses.fields(cls)})

    def fields(self) -> dict[str, Any]:
        """The options as keyword arguments, for an event that carries them flat."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(ResizeOptions)}

    def check(self, max_dimension: int) -> None:
        """Refuse what the form's model refuses, for options that came straight from an event."""
        for name, value in (("width", self.width), ("height", self.height)):
            if value is not None and not 1 <= value <= max_dimension:
                raise InvalidRequest(f"{name} must be between 1 and {max_dimension}")
        if self.quality is not None and not QUALITY_RANGE[0] <= self.quality <= QUALITY_RANGE[1]:
            raise InvalidRequest("quality must be between 1 and 100")
        if self.gravity not in ALL_GRAVITIES:
            raise InvalidRequest(RULES["gravity"].message)
        if self.focus is not None and focus_problem(self.focus.x, self.focus.y):
            raise InvalidRequest(RULES["focus"].message)


# Every option's rule, by field name.
RULES: dict[str, Rule] = {f.name: f.metadata["rule"] for f in dataclasses.fields(ResizeOptions)}
# The options a form field or a variant's key sets directly.
HTTP_OPTIONS = tuple(name for name, rule in RULES.items() if rule.http)
OPTION_NAMES = tuple(RULES)


# ASCII decimals only: float() also takes other scripts' digits, "inf" and "1_0".
_FOCUS = re.compile(r"\s*([0-9]{0,3}(?:\.[0-9]{1,12})?)\s*,\s*([0-9]{0,3}(?:\.[0-9]{1,12})?)\s*")


def auto_quality_problem(written: str) -> str | None:
    """Why quality=auto cannot apply to an output written in this Pillow format, or None."""
    if written in AUTO_QUALITY_FORMATS:
        return None
    return f"quality=auto is for JPEG, WebP and AVIF outputs, not {written}"


def focus_problem(x: float, y: float) -> bool:
    return not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in (x, y))


def parse_focus(text: str) -> FocalPoint:
    """`0.3,0.6` -> FocalPoint(0.3, 0.6); ValueError for anything else."""
    match = _FOCUS.fullmatch(text)
    if not match or not all(match.groups()):
        raise ValueError("focus is X,Y")
    x, y = float(match.group(1)), float(match.group(2))
    if focus_problem(x, y):
        raise ValueError("focus is outside 0..1")
    return FocalPoint(x, y)
