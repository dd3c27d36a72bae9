"""This API process's connections to its status view: kept per thread, readers apart from the writer.

Opening a connection per request ran the schema script and took the write lock,
so every status read queued behind the projector's batches. Now the schema is
made once at start, reads go through a read-only connection that each request
thread keeps, and only recording an accepted request writes.
"""

from __future__ import annotations

import threading
from pathlib import Path

from read_model.view import StatusView

# Each request thread keeps two connections (32 threads: 64), each with its own page cache, filled as the
# view grows (SQLite's default: 2 MB). Lookups here are by key, a few pages each, and the file's pages stay
# in the OS's cache for all of them. In 3,000-upload imports the API rose 70 MB with the default, 43 MB so.
THREAD_CACHE_KIB = 256


class ViewConnections:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        # The writer creates (or upgrades) the schema once, before any reader opens the file.
        StatusView(path).close()

    def _kept(self, name: str, read_only: bool) -> StatusView:
        view: StatusView | None = getattr(self._local, name, None)
        if view is None:
            view = StatusView(self.path, read_only=read_only, cache_kib=THREAD_CACHE_KIB)
            setattr(self._local, name, view)
        return view

    def reader(self) -> StatusView:
        """This thread's read-only connection: no DDL, no lock, never waits on a write."""
        return self._kept("reader", read_only=True)

    def writer(self) -> StatusView:
        """This thread's writing connection, for folding the requests this process accepted."""
        return self._kept("writer", read_only=False)
