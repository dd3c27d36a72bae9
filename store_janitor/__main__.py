"""`store-janitor`: erases deleted tasks' objects once more after their deletion, and sweeps expired objects
where the store has no lifecycle rules; run one or more (one sweeps at a time)."""

from __future__ import annotations

import threading

from common.role import run_role
from common.settings import Settings
from store_janitor.janitor import Janitor


def _run(settings: Settings, stop: threading.Event) -> None:
    janitor = Janitor(settings)
    try:
        janitor.run(stop)
    finally:
        janitor.close()


def main() -> None:
    run_role(_run, "store-janitor", __doc__ or "")


if __name__ == "__main__":
    main()
