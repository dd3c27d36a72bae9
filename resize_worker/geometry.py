"""Where the pixels go: pure arithmetic from source size and request to a resize plan."""

from __future__ import annotations

from dataclasses import dataclass

from vocabulary.options import MODES


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

    @property
    def scale(self) -> float:
        """Output pixels per source pixel along the larger ratio (how much detail is needed)."""
        left, top, right, bottom = self.crop
        return max(self.scaled[0] / (right - left), self.scaled[1] / (bottom - top))


def _proportional(src_w: int, src_h: int, width: int | None, height: int | None) -> tuple[int, int]:
    if width is not None:
        return width, max(1, round(src_h * width / src_w))
    assert height is not None
    return max(1, round(src_w * height / src_h)), height


def default_upscale(mode: str) -> bool:
    """fill and stretch promise exactly width x height, as the original service did; fit and pad never enlarge."""
    return mode in {"fill", "stretch"}


def plan(
    src_w: int,
    src_h: int,
    width: int | None,
    height: int | None,
    mode: str = "fill",
    anchor: tuple[float, float] = (0.5, 0.5),
    upscale: bool | None = None,
) -> Plan:
    """The plan for one request. With only one side given, every mode keeps the aspect ratio."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    if width is None and height is None:
        raise ValueError("width or height is required")
    enlarge = default_upscale(mode) if upscale is None else upscale
    whole = (0.0, 0.0, float(src_w), float(src_h))
    if width is None or height is None:
        size = _proportional(src_w, src_h, width, height)
        if not enlarge and size[0] > src_w:
            size = (src_w, src_h)
        return Plan(whole, size, size, (0, 0))
    if mode == "stretch":
        if not enlarge:
            width, height = min(width, src_w), min(height, src_h)
        return Plan(whole, (width, height), (width, height), (0, 0))
    if mode == "fill":
        # Cover the box, then take the window the anchor names: exact size, no distortion.
        if not enlarge and (width > src_w or height > src_h):
            shrink = min(src_w / width, src_h / height, 1.0)
            width, height = max(1, round(width * shrink)), max(1, round(height * shrink))
        scale = max(width / src_w, height / src_h)
        crop_w, crop_h = min(src_w, width / scale), min(src_h, height / scale)
        left, top = (src_w - crop_w) * anchor[0], (src_h - crop_h) * anchor[1]
        return Plan((left, top, left + crop_w, top + crop_h), (width, height), (width, height), (0, 0))
    scale = min(width / src_w, height / src_h)
    if not enlarge:
        scale = min(scale, 1.0)
    fitted = (max(1, round(src_w * scale)), max(1, round(src_h * scale)))
    if mode == "fit":
        return Plan(whole, fitted, fitted, (0, 0))
    offset = ((width - fitted[0]) // 2, (height - fitted[1]) // 2)
    return Plan(whole, fitted, (width, height), offset)


def box_within(parent: Plan, child: Plan, factor: float) -> tuple[float, float, float, float] | None:
    """Where `child`'s crop lies in `parent`'s resized pixels, if `child` can be resized from them instead of
    from the source: the parent covers the child's crop and has at least `factor` times the detail it needs
    on both axes. None otherwise."""
    p_left, p_top, p_right, p_bottom = parent.crop
    c_left, c_top, c_right, c_bottom = child.crop
    if c_left < p_left or c_top < p_top or c_right > p_right or c_bottom > p_bottom:
        return None
    sx = parent.scaled[0] / (p_right - p_left)
    sy = parent.scaled[1] / (p_bottom - p_top)
    need_x = child.scaled[0] / (c_right - c_left)
    need_y = child.scaled[1] / (c_bottom - c_top)
    if sx < factor * need_x or sy < factor * need_y:
        return None
    return ((c_left - p_left) * sx, (c_top - p_top) * sy, (c_right - p_left) * sx, (c_bottom - p_top) * sy)
