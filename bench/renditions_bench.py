"""`make bench-renditions`: the engine making five renditions of one upload, each from the source or the smaller
ones from a larger one's pixels (engine.DERIVE_FACTOR), on real photos.

For each photo: CPU per upload for the five renditions (1600x900, 800x450,
400x400, 200x200, 100x100, fill, JPEG 85) with and without derivation, and per
rendition the PSNR of each way's JPEG against a reference made at full
precision (the source decoded whole, LANCZOS in floating point, the same
crop), so the quality given up is measured as users get it, not assumed. The
bound: derived renditions within DERIVED_PSNR_BOUND dB of those made from the
source.
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from bench import corpus
from bench.photos import jpeg, pillow_photo, skimage_photo
from common import heap
from resize_worker import engine
from resize_worker.engine import Target, resize_many
from resize_worker.geometry import plan

RENDITIONS = ((1600, 900), (800, 450), (400, 400), (200, 200), (100, 100))
DERIVED_PSNR_BOUND = 0.5


def photos() -> list[tuple[str, bytes]]:
    def wide(image: Image.Image) -> bytes:
        # 1920x1080, as the peers benchmark's photo: cropped to 16:9 and scaled.
        w, h = image.size
        crop_h = min(h, round(w * 9 / 16))
        top = (h - crop_h) // 2
        return jpeg(image.crop((0, top, w, top + crop_h)).resize((1920, 1080), Image.Resampling.LANCZOS), 90)

    loaded: list[tuple[str, Callable[[], Image.Image]]] = [
        ("pavement (Pillow xmp_test)", lambda: pillow_photo("xmp_test.jpg")),
        ("field (Pillow junk_jpeg_header)", lambda: pillow_photo("junk_jpeg_header.jpg")),
        ("retina (scikit-image)", lambda: skimage_photo("retina.jpg")),
        ("galaxies (scikit-image hubble)", lambda: skimage_photo("hubble_deep_field.jpg")),
    ]
    return [("photo-like (bench/corpus.py)", corpus.photo()), *((name, wide(load())) for name, load in loaded)]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def _reference(source: Image.Image, width: int, height: int) -> np.ndarray:
    target = plan(source.width, source.height, width, height, "fill")
    floating = [band.convert("F") for band in source.convert("RGB").split()]
    made = [band.resize(target.scaled, Image.Resampling.LANCZOS, box=target.crop) for band in floating]
    return np.stack([np.clip(np.asarray(band), 0, 255).round() for band in made], axis=-1)


def _made(data: bytes, factor: float, fmt: str) -> list[bytes]:
    engine.DERIVE_FACTOR = factor
    try:
        return [r.data for r in resize_many(data, [Target(w, h, format=fmt, quality=85) for w, h in RENDITIONS])]
    finally:
        engine.DERIVE_FACTOR = DEFAULT_FACTOR


DEFAULT_FACTOR = engine.DERIVE_FACTOR


def _cpu_ms(data: bytes, factor: float, repeats: int) -> float:
    _made(data, factor, "jpeg")
    runs = []
    for _ in range(repeats):
        started = time.process_time()
        _made(data, factor, "jpeg")
        runs.append(time.process_time() - started)
    return statistics.median(runs) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    heap.keep_freed_buffers()  # as the worker's resize child does
    print(f"five renditions {', '.join(f'{w}x{h}' for w, h in RENDITIONS)}; derivation factor {DEFAULT_FACTOR}")
    worst = math.inf
    for name, data in photos():
        direct_ms = _cpu_ms(data, math.inf, args.repeats)
        derived_ms = _cpu_ms(data, DEFAULT_FACTOR, args.repeats)
        print(
            f"\n{name}: CPU per upload {direct_ms:.1f} ms from the source, {derived_ms:.1f} ms derived "
            f"({derived_ms / direct_ms:.2f}x)"
        )
        with Image.open(io.BytesIO(data)) as opened:
            source = opened.convert("RGB")
        made_direct = _made(data, math.inf, "jpeg")
        made_derived = _made(data, DEFAULT_FACTOR, "jpeg")
        for (w, h), direct, derived in zip(RENDITIONS, made_direct, made_derived, strict=True):
            reference = _reference(source, w, h)
            p_direct = _psnr(np.asarray(Image.open(io.BytesIO(direct)).convert("RGB")), reference)
            p_derived = _psnr(np.asarray(Image.open(io.BytesIO(derived)).convert("RGB")), reference)
            same = direct == derived
            worst = min(worst, p_derived - p_direct)
            note = "made from the source either way" if same else f"{p_derived - p_direct:+.2f} dB"
            print(f"    {w}x{h}: PSNR from the source {p_direct:.2f} dB, derived {p_derived:.2f} dB ({note})")
    verdict = "within" if worst >= -DERIVED_PSNR_BOUND else "NOT within"
    print(
        f"\nworst derived rendition: {worst:+.2f} dB against the same made from the source "
        f"({verdict} the {DERIVED_PSNR_BOUND} dB bound)"
    )


if __name__ == "__main__":
    main()
