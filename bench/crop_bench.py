"""`make bench-crop`: do face and smart crops keep the subject, against a centre crop and libvips' attention?

Cases are real photographs from packages' test data (bench/photos.py) placed
off-centre in a wider frame of another real photograph:

- faces: portraits (Grace Hopper from matplotlib and Pillow, scikit-image's
  astronaut and cameraman) on a field, pavement and an airfield, at four
  places across a 1920x1080 frame. The face box is what the detector finds in
  the portrait alone (portraits where it finds none are listed and left out);
  each method makes a square fill crop (1080x1080: a crop, no scaling) and
  the share of the face box inside it is printed. Target: >= 95% in every
  case for gravity=face.
- smart: subject photos (a cat, a cup of coffee, a rocket, a motorcycle, a
  flower, a plane, the astronaut) at either end of a 2400x800 frame of grey
  pavement; a square crop "keeps" the subject when >= 90% of it is inside.
  Target: gravity=smart keeps it at least as often as pyvips'
  smartcrop(interesting="attention").
- CPU: the engine's time for 1920x1080 -> 400x400 with gravity=face and smart
  against centre, medians over repeated runs in this process.

Where each method put its window is found by matching the crop against the
frame, not by asking the method: pyvips and the engine are judged alike.
"""

from __future__ import annotations

import argparse
import io
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageFilter

from bench.photos import jpeg, matplotlib_photo, pillow_photo, place, skimage_photo
from resize_worker import subjects
from resize_worker.engine import resize

FRAME = (1920, 1080)
WIDE = (2400, 800)


@dataclass(frozen=True)
class Portrait:
    name: str
    image: Image.Image


def portraits() -> list[Portrait]:
    return [
        Portrait("grace_hopper (matplotlib)", matplotlib_photo()),
        Portrait("hopper (Pillow)", pillow_photo("hopper.jpg")),
        Portrait("astronaut (scikit-image)", skimage_photo("astronaut.png")),
        Portrait("camera (scikit-image)", skimage_photo("camera.png")),
    ]


def backgrounds() -> list[tuple[str, Image.Image]]:
    return [
        ("field", pillow_photo("junk_jpeg_header.jpg")),
        ("pavement", pillow_photo("xmp_test.jpg")),
        ("airfield", pillow_photo("exif_typeerror.jpg")),
    ]


def window_left(frame: Image.Image, crop: Image.Image) -> int:
    """Where a same-scale crop of the frame starts, by template matching on greyscale at a quarter size."""
    quarter = (frame.width // 4, frame.height // 4)
    small = np.asarray(frame.convert("L").resize(quarter))
    part = np.asarray(crop.convert("L").resize((crop.width // 4, crop.height // 4)))
    scores = cv2.matchTemplate(small, part, cv2.TM_SQDIFF)
    _, _, (x, _), _ = cv2.minMaxLoc(scores)
    return int(x * 4)


def inside(box: tuple[float, float, float, float], left: int, width: int) -> float:
    """The share of a box's width within [left, left + width) (the window spans the frame's height)."""
    x0, _, x1, _ = box
    return max(0.0, min(x1, left + width) - max(x0, left)) / (x1 - x0)


def engine_crop(gravity: str) -> Callable[[bytes, int, int], Image.Image]:
    def crop(data: bytes, width: int, height: int) -> Image.Image:
        return Image.open(io.BytesIO(resize(data, width, height, gravity=gravity, format="png").data))

    return crop


def vips_crop(data: bytes, width: int, height: int) -> Image.Image:
    import pyvips

    cropped = pyvips.Image.new_from_buffer(data, "").smartcrop(width, height, interesting="attention")
    return Image.open(io.BytesIO(cropped.write_to_buffer(".png")))


METHODS: dict[str, Callable[[bytes, int, int], Image.Image]] = {
    "centre": engine_crop("centre"),
    "face": engine_crop("face"),
    "smart": engine_crop("smart"),
    "entropy": engine_crop("entropy"),
    "vips attention": vips_crop,
}


def face_cases() -> None:
    print("Faces: share of the face box inside a 1080x1080 fill crop of a 1920x1080 frame")
    header = f"{'case':52s}" + "".join(f"{m:>16s}" for m in METHODS)
    print(header)
    worst: dict[str, float] = {m: 1.0 for m in METHODS}
    kept: dict[str, int] = {m: 0 for m in METHODS}
    cases = 0
    for portrait in portraits():
        faces = subjects.find_faces(portrait.image)
        if not faces:
            print(f"  {portrait.name}: no face found in the portrait alone; left out")
            continue
        face = faces[0]
        for background_name, background in backgrounds():
            for where in (0.1, 0.3, 0.7, 0.9):
                placed = place(portrait.image, background, FRAME, where, 0.6)
                left, top, right, bottom = placed.box
                w, h = right - left, bottom - top
                box = (left + face.x * w, top + face.y * h, left + (face.x + face.width) * w, 0.0)
                data = jpeg(placed.frame)
                shares = {}
                for method, crop in METHODS.items():
                    made = crop(data, FRAME[1], FRAME[1])
                    shares[method] = inside(box, window_left(placed.frame, made), FRAME[1])
                    worst[method] = min(worst[method], shares[method])
                    kept[method] += shares[method] >= 0.95
                cases += 1
                name = f"{portrait.name} on {background_name} at {where:.1f}"
                print(f"{name:52s}" + "".join(f"{shares[m]:>15.0%} " for m in METHODS))
    print(f"{'kept >= 95% (of ' + str(cases) + ')':52s}" + "".join(f"{kept[m]:>16d}" for m in METHODS))
    print(f"{'worst case':52s}" + "".join(f"{worst[m]:>15.0%} " for m in METHODS))
    reached = kept["face"] == cases
    print(f"target: gravity=face keeps >= 95% of the face in every case: {'reached' if reached else 'NOT reached'}")


def smart_cases() -> None:
    print("\nSmart: a subject photo at either end of a 2400x800 frame; an 800x800 crop keeps it when >= 90% is inside")
    subjects_ = [
        ("cat (scikit-image chelsea)", skimage_photo("chelsea.png")),
        ("coffee (scikit-image)", skimage_photo("coffee.png")),
        ("rocket (scikit-image)", skimage_photo("rocket.jpg")),
        ("motorcycle (scikit-image)", skimage_photo("motorcycle_left.png")),
        ("astronaut (scikit-image)", skimage_photo("astronaut.png")),
        ("flower (Pillow)", pillow_photo("flower.jpg")),
        ("plane (Pillow)", pillow_photo("exif_typeerror.jpg")),
    ]
    grounds = [
        # Texture without colour, and colour without texture (a field out of focus).
        ("grey pavement", pillow_photo("xmp_test.jpg").convert("L").convert("RGB")),
        ("blurred field", pillow_photo("junk_jpeg_header.jpg").filter(ImageFilter.GaussianBlur(12))),
    ]
    methods = {m: METHODS[m] for m in ("centre", "smart", "entropy", "vips attention")}
    print(f"{'case':56s}" + "".join(f"{m:>16s}" for m in methods))
    kept = {m: 0 for m in methods}
    cases = 0
    for (name, photo), (ground_name, ground), where in itertools.product(subjects_, grounds, (0.15, 0.85)):
        placed = place(photo, ground, WIDE, where, 0.5)
        left, _, right, _ = placed.box
        data = jpeg(placed.frame)
        shares = {}
        for method, crop in methods.items():
            made = crop(data, WIDE[1], WIDE[1])
            shares[method] = inside((left, 0, right, 0), window_left(placed.frame, made), WIDE[1])
            kept[method] += shares[method] >= 0.9
        cases += 1
        case = f"{name} on {ground_name} at {where:.2f}"
        print(f"{case:56s}" + "".join(f"{shares[m]:>15.0%} " for m in methods))
    print(f"{'kept (of ' + str(cases) + ')':56s}" + "".join(f"{kept[m]:>16d}" for m in methods))
    reached = kept["smart"] >= kept["vips attention"]
    verdict = "reached" if reached else "NOT reached"
    print(f"target: smart keeps the subject at least as often as libvips attention: {verdict}")


def cpu(repeats: int) -> None:
    print("\nCPU: 1920x1080 photo -> 400x400 fill, median of", repeats, "runs (one core)")
    placed = place(matplotlib_photo(), pillow_photo("junk_jpeg_header.jpg"), FRAME, 0.8, 0.6)
    data = jpeg(placed.frame)
    timings = {}
    for gravity in ("centre", "face", "smart", "entropy"):
        resize(data, 400, 400, gravity=gravity)  # warm
        runs = []
        for _ in range(repeats):
            started = time.process_time()
            resize(data, 400, 400, gravity=gravity)
            runs.append(time.process_time() - started)
        timings[gravity] = statistics.median(runs)
    base = timings["centre"]
    for gravity, seconds in timings.items():
        added = (seconds - base) / base
        print(f"  {gravity:8s} {seconds * 1000:7.1f} ms   added {added:+.0%} of the resize")
    print(f"target: face adds <= 30% of the resize: {'reached' if timings['face'] <= 1.3 * base else 'NOT reached'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    face_cases()
    smart_cases()
    cpu(args.repeats)


if __name__ == "__main__":
    main()
