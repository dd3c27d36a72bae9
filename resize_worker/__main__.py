"""`resize-worker`: one consumer of the worker group; SIGTERM finishes the task in hand."""

from __future__ import annotations

from common.role import run_role
from resize_worker.worker import ResizeWorker


def main() -> None:
    run_role(lambda settings, stop: ResizeWorker(settings).run(stop), "resize-worker", __doc__ or "")


if __name__ == "__main__":
    main()
