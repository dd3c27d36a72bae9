"""What a resize can be asked for: the options of one output, its modes, gravities and formats, named once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

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
# Chosen from the picture itself: the crop window with the most detail.
CONTENT_GRAVITIES = ("entropy",)

# The `format` values a request may name, and the Pillow format each one writes.
OUTPUT_FORMATS = {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF", "avif": "AVIF"}


@dataclass(frozen=True)
class ResizeOptions:
    """The options of one output: the HTTP request's, a variant's, and the engine's target.

    The events carry the same seven fields flat (the Avro contract); `of` and
    `fields` are the one mapping between the two shapes.
    """

    width: int | None = None
    height: int | None = None
    mode: str = "fill"
    format: str | None = None
    quality: int | None = None
    gravity: str = "centre"
    upscale: bool | None = None

    @classmethod
    def of(cls, holder: object) -> ResizeOptions:
        """The options of anything that carries them as attributes: a ResizeRequested, a VariantSpec."""
        return cls(**{f.name: getattr(holder, f.name) for f in dataclasses.fields(cls)})

    def fields(self) -> dict[str, Any]:
        """The options as keyword arguments, for an event that carries them flat."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def check(self, max_dimension: int) -> None:
        for name, value in (("width", self.width), ("height", self.height)):
            if value is not None and not 1 <= value <= max_dimension:
                raise InvalidRequest(f"{name} must be between 1 and {max_dimension}")
        if self.quality is not None and not 1 <= self.quality <= 100:
            raise InvalidRequest("quality must be between 1 and 100")
