"""Content-aware crop placement: put the fill window where the picture has the most detail."""

from __future__ import annotations

from PIL import Image, ImageOps

_PROBE_SIZE = 96
_STEPS = 16


def entropy_anchor(source: Image.Image, oriented: tuple[int, int], aspect: float) -> tuple[float, float]:
    """The anchor (0..1 on each axis) of the crop window of `aspect` with the highest entropy.

    Judged on a small greyscale copy (JPEG draft makes it cheap), so it costs
    little next to the resize itself.
    """
    src_w, src_h = oriented
    if abs(src_w / src_h - aspect) < 1e-3:
        return (0.5, 0.5)
    probe = source.copy()
    probe.draft("L", (_PROBE_SIZE * 4, _PROBE_SIZE * 4))
    probe = ImageOps.exif_transpose(probe).convert("L")
    probe.thumbnail((_PROBE_SIZE, _PROBE_SIZE))
    w, h = probe.size
    horizontal = src_w / src_h > aspect
    window = (round(h * aspect), h) if horizontal else (w, round(w / aspect))
    free = (w - window[0]) if horizontal else (h - window[1])
    if free <= 0:
        return (0.5, 0.5)
    best, best_score = 0.5, -1.0
    for step in range(_STEPS + 1):
        position = step / _STEPS
        offset = round(free * position)
        box = (offset, 0, offset + window[0], h) if horizontal else (0, offset, w, offset + window[1])
        score = probe.crop(box).entropy()
        # Ties go to the centre: no reason to move off it.
        if score > best_score + 1e-6 or (abs(score - best_score) <= 1e-6 and abs(position - 0.5) < abs(best - 0.5)):
            best, best_score = position, score
    return (best, 0.5) if horizontal else (0.5, best)
