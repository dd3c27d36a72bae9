"""`make bench-quality`: quality=auto against a fixed quality on real photographs, per photo.

Each photo (Pillow's and scikit-image's own, bench/photos.py) is resized to
1280 pixels wide at most (no enlarging) and written:

- JPEG at the fixed quality 85 and with quality=auto: bytes, the saving,
  the quality chosen and the SSIM of each against the unencoded resize (the
  auto one must be no worse than AUTO_QUALITY_TARGET), and the encode time of
  auto against one encode at 85 (the search's encodes and its scores
  included). Targets: median saving >= 20%, encode time <= 3x.
- WebP and AVIF with quality=auto against their fixed defaults (80, 60), for
  information.

Times are CPU seconds of this process, medians of a few runs.
"""

from __future__ import annotations

import argparse
import functools
import io
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from bench.photos import jpeg, pillow_photo, skimage_photo
from resize_worker.auto_quality import AutoQuality, choose, ssim
from resize_worker.encode import encode

PHOTOS: list[tuple[str, Callable[[], Image.Image]]] = [
    ("pavement (Pillow xmp_test)", lambda: pillow_photo("xmp_test.jpg")),
    ("field (Pillow junk_jpeg_header)", lambda: pillow_photo("junk_jpeg_header.jpg")),
    ("plane (Pillow exif_typeerror)", lambda: pillow_photo("exif_typeerror.jpg")),
    ("wall (Pillow iptc)", lambda: pillow_photo("iptc.jpg")),
    ("flower (Pillow)", lambda: pillow_photo("flower.jpg")),
    ("portrait (Pillow hopper)", lambda: pillow_photo("hopper.jpg")),
    ("astronaut (scikit-image)", lambda: skimage_photo("astronaut.png")),
    ("cat (scikit-image chelsea)", lambda: skimage_photo("chelsea.png")),
    ("coffee (scikit-image)", lambda: skimage_photo("coffee.png")),
    ("rocket (scikit-image)", lambda: skimage_photo("rocket.jpg")),
    ("motorcycle (scikit-image)", lambda: skimage_photo("motorcycle_left.png")),
    ("galaxies (scikit-image hubble)", lambda: skimage_photo("hubble_deep_field.jpg")),
    ("retina (scikit-image)", lambda: skimage_photo("retina.jpg")),
]
FIXED = {"JPEG": 85, "WEBP": 80, "AVIF": 60}


def _luma(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB").convert("L"), dtype=np.float32)


def _cpu(action: Callable[[], object], repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        started = time.process_time()
        action()
        runs.append(time.process_time() - started)
    return statistics.median(runs)


def _resized(photo: Image.Image) -> Image.Image:
    # The source as users send it (a JPEG at 95), decoded and resized as the engine would.
    with Image.open(io.BytesIO(jpeg(photo, 95))) as decoded:
        image = decoded.convert("RGB")
    if image.width > 1280:
        image = image.resize((1280, round(image.height * 1280 / image.width)), Image.Resampling.LANCZOS)
    return image


def run(fmt: str, policy: AutoQuality, repeats: int) -> None:
    fixed_quality = FIXED[fmt]
    print(f"\n{fmt}: quality=auto (target SSIM {policy.target}) against a fixed {fixed_quality}")
    print(
        f"{'photo':34s} {'size':>10s} {'fixed B':>9s} {'SSIM':>7s} {'auto B':>9s} {'q':>3s} {'SSIM':>7s}"
        f" {'saved':>7s} {'encodes':>7s} {'1 enc':>7s} {'auto':>7s} {'time x':>7s}"
    )
    savings, ratios, misses = [], [], 0
    for name, load in PHOTOS:
        frame = _resized(load())
        reference = np.asarray(frame.convert("L"), dtype=np.float32)
        encode_at = functools.partial(_encode_at, frame, fmt)
        fixed = encode_at(fixed_quality)
        fixed_score = ssim(reference, _luma(fixed))
        chosen = choose(frame, encode_at, policy)
        one = _cpu(functools.partial(encode_at, fixed_quality), repeats)
        auto = _cpu(functools.partial(choose, frame, encode_at, policy), repeats)
        saved = 1 - len(chosen.data) / len(fixed)
        savings.append(saved)
        ratios.append(auto / one)
        misses += chosen.score < policy.target
        print(
            f"{name:34s} {f'{frame.width}x{frame.height}':>10s} {len(fixed):>9,d} {fixed_score:>7.4f}"
            f" {len(chosen.data):>9,d} {chosen.quality:>3d} {chosen.score:>7.4f} {saved:>7.1%}"
            f" {chosen.encodes:>7d} {one * 1000:>5.1f}ms {auto * 1000:>5.0f}ms {auto / one:>6.1f}x"
        )
    median_saving, median_ratio = statistics.median(savings), statistics.median(ratios)
    print(
        f"median saving {median_saving:.1%}, median encode time {median_ratio:.1f}x one encode, max {max(ratios):.1f}x"
    )
    print(f"outputs under the target score: {misses}")
    if fmt == "JPEG":
        print(f"target: median saving >= 20%: {'reached' if median_saving >= 0.2 else 'NOT reached'}")
        print(f"target: encode time <= 3x one encode: {'reached' if median_ratio <= 3 else 'NOT reached'} (median)")


def _encode_at(frame: Image.Image, fmt: str, quality: int) -> bytes:
    return encode([frame], fmt, quality, None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--formats", default="JPEG,WEBP,AVIF")
    args = parser.parse_args(argv)
    policy = AutoQuality()  # the settings' defaults
    for fmt in args.formats.split(","):
        run(fmt, policy, args.repeats)


if __name__ == "__main__":
    main()
