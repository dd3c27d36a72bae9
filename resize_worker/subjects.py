"""Where the subject of a picture is, for crops that keep it: faces, else what draws the eye.

Both look at one small copy of the upright source, once per original whatever
the number of outputs; each output then centres its own window on what they
found (`anchor_on`).

- Faces: OpenCV's Haar cascade (the `alt2` frontal face model, shipped inside
  the opencv-python-headless wheel) on a greyscale copy of the picture, 320
  pixels wide, then (if it finds none) 560 for faces down to a fourteenth of
  the short side, only around skin-toned patches; smaller is a crowd, which
  `smart` handles as well.
- Smart: a saliency map in the manner of libvips' `attention` crop (edges,
  skin tones, saturated colour), blurred at the scale of a subject; its peak
  is the focal point.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from schemas.events import Box, CropSubject, FocalPoint

SMART_PROBE_SIDE = 160
# How much each cue counts (edges and saturation normalised to their 99th percentile, skin 0 or 1), and
# the blur as a fraction of the picture: skin at half weight, so warm backgrounds (sand, dry grass) do not
# outweigh an object with edges and colour (bench/crop_bench.py).
_EDGE_W, _SKIN_W, _SAT_W, _SIGMA_DIV = 1.0, 0.5, 1.0, 12
# (the copy's longer side, the smallest face as a fraction of its short side) of each look.
_LOOKS = ((320, 8), (560, 14))
# The most of the picture the looks need (the engine decodes at least this much for gravity=face).
FACE_SIDE = max(side for side, _ in _LOOKS)
_FACE_MODEL = "haarcascade_frontalface_alt2.xml"
# OpenCV's own thread pool would fight the other workers for the cores: one task, one core.
cv2.setNumThreads(1)
# Loaded when the module is imported: in the fork server, once for every resize child.
_CASCADE = cv2.CascadeClassifier(cv2.data.haarcascades + _FACE_MODEL)  # type: ignore[attr-defined]


def _probe(image: Image.Image, side: int, mode: str) -> Image.Image:
    small = image.convert(mode) if image.mode != mode else image.copy()
    small.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return small


def find_faces(image: Image.Image) -> list[Box]:
    """The frontal faces in the picture, largest first, as boxes relative to its size.

    A quick look first (big faces, a small copy); only when it finds none, a closer one for faces down to a
    fourteenth of the short side: most pictures with a face pay for the quick look alone."""
    if _CASCADE.empty():
        raise RuntimeError(f"OpenCV's {_FACE_MODEL} did not load")
    for side, fraction in _LOOKS:
        found = _faces_at(image, side, fraction)
        if found:
            return found
    return []


def _faces_at(image: Image.Image, side: int, fraction: int) -> list[Box]:
    rgb = np.asarray(_probe(image, side, "RGB"))
    grey = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    h, w = grey.shape
    smallest = max(16, round(min(h, w) / fraction))
    found: list[tuple[int, int, int, int]] = []
    for left, top, right, bottom in _skin_regions(rgb, smallest):
        for x, y, bw, bh in _CASCADE.detectMultiScale(
            grey[top:bottom, left:right], scaleFactor=1.2, minNeighbors=3, minSize=(smallest, smallest)
        ):
            box = (int(x) + left, int(y) + top, int(bw), int(bh))
            if not any(_overlap(box, other) > 0.3 for other in found):
                found.append(box)
    boxes = [Box(float(x / w), float(y / h), float(bw / w), float(bh / h)) for x, y, bw, bh in found]
    return sorted(boxes, key=lambda b: b.width * b.height, reverse=True)


def _skin_regions(rgb: np.ndarray, smallest: int) -> list[tuple[int, int, int, int]]:
    """Where a face may be: around each patch of skin-toned pixels big enough to hold one (left, top, right,
    bottom). The cascade costs in proportion to the area it scans, and textures (grass, gravel, foliage) are
    where it spends longest; a greyscale picture, with no skin tone to go by, is scanned whole."""
    h, w = rgb.shape[:2]
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    if float(np.std(ycrcb[..., 1])) + float(np.std(ycrcb[..., 2])) < 2.0:
        return [(0, 0, w, h)]
    skin = cv2.inRange(ycrcb, np.array([40, 133, 77], np.uint8), np.array([255, 173, 127], np.uint8))
    skin = cv2.morphologyEx(skin, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(skin, connectivity=8)
    regions = []
    for left, top, width, height, area in stats[1:count]:
        if area < smallest * smallest / 4:
            continue
        # A face's skin patch may be only its cheeks and forehead: look at its surroundings too.
        margin_x, margin_y = max(width, smallest), max(height, smallest)
        regions.append(
            (
                max(0, left - margin_x),
                max(0, top - margin_y),
                min(w, left + width + margin_x),
                min(h, top + height + margin_y),
            )
        )
    return _merged(regions, w, h)


def _merged(regions: list[tuple[int, int, int, int]], w: int, h: int) -> list[tuple[int, int, int, int]]:
    """Overlapping regions as one (a face is looked for once); most of the picture: the whole of it."""
    merged: list[tuple[int, int, int, int]] = []
    for region in regions:
        while True:
            meets = next((m for m in merged if _intersect(m, region)), None)
            if meets is None:
                break
            merged.remove(meets)
            region = (
                min(region[0], meets[0]),
                min(region[1], meets[1]),
                max(region[2], meets[2]),
                max(region[3], meets[3]),
            )
        merged.append(region)
    if sum((r[2] - r[0]) * (r[3] - r[1]) for r in merged) > 0.6 * w * h:
        return [(0, 0, w, h)]
    return merged


def _intersect(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether two (left, top, right, bottom) regions share any area."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over the smaller box's area."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    return width * height / min(a[2] * a[3], b[2] * b[3])


def salient_point(image: Image.Image) -> FocalPoint:
    """The peak of the picture's saliency: edges, skin tones and saturated colour, as libvips' attention weighs them."""
    rgb = np.asarray(_probe(image, SMART_PROBE_SIDE, "RGB"), dtype=np.float32)
    h, w = rgb.shape[:2]
    if h < 3 or w < 3:
        return FocalPoint(0.5, 0.5)
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    edges = np.abs(cv2.Laplacian(luma, cv2.CV_32F, ksize=3))
    high, low = rgb.max(axis=2), rgb.min(axis=2)
    saturation = np.where(high > 40, (high - low) / np.maximum(high, 1.0), 0.0)
    # Skin: the chroma box of Chai and Ngan (YCrCb), in light enough pixels.
    cr = (rgb[..., 0] - luma) * 0.713 + 128
    cb = (rgb[..., 2] - luma) * 0.564 + 128
    skin = ((cr > 135) & (cr < 173) & (cb > 77) & (cb < 127) & (luma > 60)).astype(np.float32)
    weight = _EDGE_W * _normalised(edges) + _SKIN_W * skin + _SAT_W * _normalised(saturation.astype(np.float32))
    # A subject is a region, not a pixel: blur at a twelfth of the picture's longer side.
    sigma = max(h, w) / _SIGMA_DIV
    blurred = cv2.GaussianBlur(weight, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)
    y, x = np.unravel_index(int(np.argmax(blurred)), blurred.shape)
    return FocalPoint(float((x + 0.5) / w), float((y + 0.5) / h))


def _normalised(values: np.ndarray) -> np.ndarray:
    top = float(np.percentile(values, 99))
    return np.clip(values / top, 0.0, 1.0) if top > 0 else np.zeros_like(values)


def smart_subject(image: Image.Image, fallback: str | None = None) -> CropSubject:
    return CropSubject("smart", salient_point(image), (), fallback)


def face_subject(image: Image.Image) -> CropSubject:
    """The faces found, centred on; no face, or a detector that fails: the smart subject, saying why."""
    try:
        faces = find_faces(image)
    except (cv2.error, RuntimeError, MemoryError):
        return smart_subject(image, "detector_failed")
    if not faces:
        return smart_subject(image, "no_face")
    return CropSubject("face", _centre(_union(faces)), tuple(faces))


def _union(boxes: list[Box] | tuple[Box, ...]) -> Box:
    left, top = min(b.x for b in boxes), min(b.y for b in boxes)
    right, bottom = max(b.x + b.width for b in boxes), max(b.y + b.height for b in boxes)
    return Box(left, top, right - left, bottom - top)


def _centre(box: Box) -> FocalPoint:
    return FocalPoint(float(box.x + box.width / 2), float(box.y + box.height / 2))


def window(oriented: tuple[int, int], aspect: float) -> tuple[float, float]:
    """The size of a fill crop of `aspect` (width / height), relative to the source: the same as geometry.plan's."""
    source_aspect = oriented[0] / oriented[1]
    return min(1.0, aspect / source_aspect), min(1.0, source_aspect / aspect)


def anchor_on(point: FocalPoint, oriented: tuple[int, int], aspect: float) -> tuple[float, float]:
    """The anchor (geometry.plan's) of the fill window of `aspect` centred on `point`, as far as the frame allows."""
    size = window(oriented, aspect)
    anchor = []
    for centre, extent in zip((point.x, point.y), size, strict=True):
        free = 1.0 - extent
        if free <= 1e-9:
            anchor.append(0.5)
        else:
            anchor.append(min(max(centre - extent / 2, 0.0), free) / free)
    return anchor[0], anchor[1]


def subject_point(subject: CropSubject, oriented: tuple[int, int], aspect: float) -> FocalPoint:
    """Where one output's window centres: all the faces when they fit in it, else the largest; else the focus."""
    if subject.boxes:
        together = _union(subject.boxes)
        fits = window(oriented, aspect)
        if together.width <= fits[0] and together.height <= fits[1]:
            return _centre(together)
        return _centre(subject.boxes[0])
    return subject.focus
