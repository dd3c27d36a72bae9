"""`make bench-engine`: this engine against pyvips and naive Pillow, one core, same images, same run.

Each (case, implementation) runs in a fresh process so its peak RSS is its own.
Prints img/s per core, the ratio to pyvips, peak RSS, and PSNR of each output
against a full-precision LANCZOS reference of the same size.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "bench"


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    box: int


CASES = [
    Case("4000x3000 JPEG -> 100", "jpeg-4000x3000", 100),
    Case("4000x3000 JPEG -> 400", "jpeg-4000x3000", 400),
    Case("4000x3000 JPEG -> 1280", "jpeg-4000x3000", 1280),
    Case("1920x1080 JPEG -> 100", "jpeg-1920x1080", 100),
    Case("1920x1080 JPEG -> 400", "jpeg-1920x1080", 400),
    Case("1920x1080 JPEG -> 1280", "jpeg-1920x1080", 1280),
    Case("1920x1080 photo JPEG -> 400", "photo-1920x1080", 400),
    Case("1024x768 RGBA PNG -> 100", "png-1024x768", 100),
    Case("1024x768 RGBA PNG -> 400", "png-1024x768", 400),
    Case("480x270 GIF, 24 frames -> 200", "gif-480x270", 200),
]
IMPLEMENTATIONS = ("engine", "pyvips", "naive")


def source_bytes(name: str) -> bytes:
    """The benchmark's inputs, made once and cached."""
    from bench import corpus

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / name
    if not path.exists():
        kind, size = name.split("-")
        width, height = (int(v) for v in size.split("x"))
        makers: dict[str, Callable[[int, int], bytes]] = {
            "jpeg": corpus.jpeg,
            "photo": corpus.photo,
            "png": corpus.rgba_png,
            "gif": corpus.animated_gif,
        }
        path.write_bytes(makers[kind](width, height))
    return path.read_bytes()


def run_engine(data: bytes, box: int) -> bytes:
    from resize_worker.engine import resize

    return resize(data, box, box, mode="fit").data


def run_pyvips(data: bytes, box: int) -> bytes:
    import pyvips

    animated = data[:3] == b"GIF"
    image = pyvips.Image.thumbnail_buffer(data, box, height=box, option_string="n=-1" if animated else "")
    # The same encoder settings as the engine: JPEG quality 85, zlib level 1.
    suffix = {b"\xff\xd8": ".jpg[Q=85]", b"\x89P": ".png[compression=1]", b"GI": ".gif"}[data[:2]]
    return bytes(image.write_to_buffer(suffix))


def run_naive(data: bytes, box: int) -> bytes:
    """What the original service did: decode everything, resize, encode."""
    from PIL import Image

    source = Image.open(io.BytesIO(data))
    fmt = source.format or "PNG"
    source.load()
    scale = min(box / source.width, box / source.height)
    size = (max(1, round(source.width * scale)), max(1, round(source.height * scale)))
    out = io.BytesIO()
    image = source.convert("RGBA" if source.mode in {"RGBA", "P", "LA"} else "RGB")
    if fmt == "JPEG":
        image.resize(size, Image.Resampling.LANCZOS).convert("RGB").save(out, "JPEG", quality=85)
    else:
        image.resize(size, Image.Resampling.LANCZOS).save(out, fmt)
    return out.getvalue()


def psnr(source: bytes, output: bytes) -> float:
    """PSNR of the first frame against a full-precision LANCZOS resize of the source to the output's size."""
    from PIL import Image, ImageChops, ImageOps, ImageStat

    result = Image.open(io.BytesIO(output))
    original = ImageOps.exif_transpose(Image.open(io.BytesIO(source)))
    mode = "RGBA" if "A" in result.convert("RGBA").getbands() and original.mode in {"RGBA", "LA", "P"} else "RGB"
    reference = original.convert(mode).resize(result.size, Image.Resampling.LANCZOS)
    diff = ImageChops.difference(reference, result.convert(mode))
    mse = sum(v * v for v in ImageStat.Stat(diff).rms) / len(diff.getbands())
    return 99.0 if mse == 0 else 10 * math.log10(255 * 255 / mse)


def measure_one(case: Case, implementation: str, seconds: float) -> dict[str, float]:
    """Run in a fresh process: img/s on one core, peak RSS, PSNR."""
    os.environ["VIPS_CONCURRENCY"] = "1"
    data = source_bytes(case.source)
    run = {"engine": run_engine, "pyvips": run_pyvips, "naive": run_naive}[implementation]
    if implementation == "pyvips":
        import pyvips

        pyvips.cache_set_max(0)
    if implementation == "engine":
        from common import heap

        heap.keep_freed_buffers()  # as the worker's resize child does
    output = run(data, case.box)  # warm up, and the output to judge
    count, started = 0, time.perf_counter()
    cpu_started = time.process_time()
    while time.perf_counter() - started < seconds or count < 3:
        run(data, case.box)
        count += 1
    cpu = time.process_time() - cpu_started
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the reference decode
    return {"img_per_core_s": count / cpu, "peak_rss_mb": peak_rss_mb, "psnr": psnr(data, output)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per cell")
    parser.add_argument("--one", nargs=2, metavar=("CASE", "IMPL"), help=argparse.SUPPRESS)
    parser.add_argument("--cases", default="", help="only cases whose name contains this")
    args = parser.parse_args(argv)
    if args.one:
        case = next(c for c in CASES if c.name == args.one[0])
        print(json.dumps(measure_one(case, args.one[1], args.seconds)))
        return
    for case in CASES:  # make the inputs before timing anything
        source_bytes(case.source)
    header = f"{'case':<32}{'impl':<8}{'img/s/core':>11}{'vs pyvips':>10}{'peak RSS MB':>12}{'PSNR dB':>9}"
    print(header)
    print("-" * len(header))
    for case in (c for c in CASES if args.cases in c.name):
        results = {}
        for implementation in IMPLEMENTATIONS:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.engine_bench",
                    "--one",
                    case.name,
                    implementation,
                    "--seconds",
                    str(args.seconds),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            results[implementation] = json.loads(done.stdout.strip().splitlines()[-1])
        for implementation, r in results.items():
            ratio = r["img_per_core_s"] / results["pyvips"]["img_per_core_s"]
            print(
                f"{case.name:<32}{implementation:<8}{r['img_per_core_s']:>11.1f}{ratio:>10.2f}"
                f"{r['peak_rss_mb']:>12.0f}{r['psnr']:>9.1f}",
                flush=True,
            )
    print(
        "\nimg/s/core: images per CPU-second of one process (VIPS_CONCURRENCY=1, libvips cache off).\n"
        "peak RSS: the whole process, interpreter and libraries included.\n"
        "PSNR: first frame against a full-precision LANCZOS resize of the source to the same size.\n"
        "naive GIF: the original service's code writes the first frame only, so its GIF row is not comparable."
    )


if __name__ == "__main__":
    main()
