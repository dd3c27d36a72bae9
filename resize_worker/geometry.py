"""Where the pixels go: pure arithmetic from source size and request to a resize plan."""

from __future__ import annotations

from dataclasses import dataclass

MODES = ("fill", "fit", "pad", "stretch")


@dataclass(frozen=True)
class Plan:
    """Resize the `crop` box of the source to `scaled`, then place it on a `canvas`.

    For pad, `offset` is where the scaled image sits on the canvas; for the
    other modes the canvas equals `scaled` and the offset is (0, 0).
    """

    crop: tuple[float, float, float, float]
    scaled: tuple[int, int]
    canvas: tuple[int, int]
    offset: tuple[int, int]


def _proportional(src_w: int, src_h: int, width: int | None, height: int | None) -> tuple[int, int]:
    if width is not None:
        return width, max(1, round(src_h * width / src_w))
    assert height is not None
    return max(1, round(src_w * height / src_h)), height


def plan(src_w: int, src_h: int, width: int | None, height: int | None, mode: str = "fill") -> Plan:
    """The plan for one request. With only one side given, every mode keeps the aspect ratio."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    if width is None and height is None:
        raise ValueError("width or height is required")
    whole = (0.0, 0.0, float(src_w), float(src_h))
    if width is None or height is None:
        size = _proportional(src_w, src_h, width, height)
        return Plan(whole, size, size, (0, 0))
    if mode == "stretch":
        return Plan(whole, (width, height), (width, height), (0, 0))
    if mode == "fill":
        # Cover the box, then take its centre: exact size, no distortion.
        scale = max(width / src_w, height / src_h)
        crop_w, crop_h = width / scale, height / scale
        left, top = (src_w - crop_w) / 2, (src_h - crop_h) / 2
        return Plan((left, top, left + crop_w, top + crop_h), (width, height), (width, height), (0, 0))
    scale = min(width / src_w, height / src_h)
    fitted = (max(1, round(src_w * scale)), max(1, round(src_h * scale)))
    if mode == "fit":
        return Plan(whole, fitted, fitted, (0, 0))
    offset = ((width - fitted[0]) // 2, (height - fitted[1]) // 2)
    return Plan(whole, fitted, (width, height), offset)
