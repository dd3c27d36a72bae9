"""`make bench-variants`: several outputs from one decode against one request per output.

Same process, same sources, CPU time per set of outputs; prints the ratio.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from bench.engine_bench import source_bytes
from resize_worker.engine import Target, resize, resize_many

SETS = {
    "100x100, 400x400, 1280x (fit)": [Target(100, 100), Target(400, 400), Target(1280, None, "fit")],
    "64x64, 128x128, 256x256": [Target(64, 64), Target(128, 128), Target(256, 256)],
    "400x400 as jpeg, webp, png": [Target(400, 400), Target(400, 400, format="webp"), Target(400, 400, format="png")],
}
SOURCES = ("jpeg-4000x3000", "jpeg-1920x1080", "png-1024x768")


def cpu_per_call(work: Callable[[], object], seconds: float) -> float:
    runs, started = 0, time.process_time()
    while time.process_time() - started < seconds or runs < 3:
        work()
        runs += 1
    return (time.process_time() - started) / runs


def together(data: bytes, targets: Sequence[Target]) -> Callable[[], object]:
    return lambda: resize_many(data, targets)


def apart(data: bytes, targets: Sequence[Target]) -> Callable[[], object]:
    return lambda: [resize(data, t.width, t.height, t.mode, t.format) for t in targets]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per measurement")
    args = parser.parse_args(argv)
    print(f"{'source':<16} {'outputs':<32} {'one decode':>11} {'one per output':>15} {'ratio':>6}")
    for source in SOURCES:
        data = source_bytes(source)
        for label, targets in SETS.items():
            one = cpu_per_call(together(data, targets), args.seconds) * 1000
            each = cpu_per_call(apart(data, targets), args.seconds) * 1000
            print(f"{source:<16} {label:<32} {one:>9.1f}ms {each:>13.1f}ms {each / one:>6.2f}")


if __name__ == "__main__":
    main()
