"""`resize-worker`: a member of each served lane's worker group; SIGTERM finishes the task in hand."""

from __future__ import annotations

import argparse

from common.role import run_role
from resize_worker.worker import ResizeWorker


def _lanes_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lanes",
        dest="worker_lanes",
        help="serve only these lanes, comma-separated, e.g. bulk (default: WORKER_LANES, else every lane)",
    )


def main() -> None:
    run_role(
        lambda settings, stop: ResizeWorker(settings).run(stop),
        "resize-worker",
        __doc__ or "",
        options=_lanes_option,
    )


if __name__ == "__main__":
    main()
