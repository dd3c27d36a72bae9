"""What a resize can be asked for: modes, gravities and output formats, named once."""

from __future__ import annotations

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
