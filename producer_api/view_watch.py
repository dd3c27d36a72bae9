"""Long-poll support: wake waiting status requests when the view changes.

One watcher thread per API process reads SQLite's `PRAGMA data_version` (a
counter that moves when another connection commits) and wakes all waiters;
the waiters themselves never poll the database. The thread runs only while
someone waits.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# A change is seen within this; each tick is one cheap PRAGMA, and only while someone waits.
_TICK = 0.005


class ViewWatch:
    def __init__(self, view_path: Path) -> None:
        self._path = view_path
        self._changed = threading.Condition()
        self._waiters = 0
        # Counts changes seen, so a change between a read and a wait is never missed.
        self._generation = 0
        self._thread: threading.Thread | None = None

    def _watch(self) -> None:
        db = sqlite3.connect(self._path, check_same_thread=False)
        try:
            version = db.execute("PRAGMA data_version").fetchone()[0]
            with self._changed:
                # A change before this first read would go unseen: let waiters re-read once.
                self._generation += 1
                self._changed.notify_all()
            while True:
                with self._changed:
                    if self._waiters == 0:
                        self._thread = None
                        return
                time.sleep(_TICK)
                current = db.execute("PRAGMA data_version").fetchone()[0]
                if current != version:
                    version = current
                    with self._changed:
                        self._generation += 1
                        self._changed.notify_all()
        finally:
            db.close()

    def wait_until(self, read: Callable[[], T], changed: Callable[[T], bool], timeout: float) -> T:
        """Re-read with `read` after each change of the view until `changed(value)` or the timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            self._waiters += 1
            generation = self._generation
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="view-watch", daemon=True)
                self._thread.start()
        try:
            value = read()
            while not changed(value):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                with self._changed:
                    if self._generation == generation:
                        self._changed.wait(remaining)
                    generation = self._generation
                value = read()
        finally:
            with self._changed:
                self._waiters -= 1
        return value
