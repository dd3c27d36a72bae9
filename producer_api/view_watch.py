"""Long-poll support: wake a waiting status request when its own task's state changes.

One watcher thread per API process reads SQLite's `PRAGMA data_version` (a
counter that moves when another connection commits). When it moves, the
watcher reads the states of all waiting tasks in one query and wakes only the
requests whose task changed: a commit for one task no longer wakes, and makes
re-read the view, every waiting request. The thread runs only while someone
waits.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from status_store.errors import ViewError
from status_store.fold import TaskRow
from status_store.view import StatusView

# A change is seen within this; each tick is one cheap PRAGMA, and only while someone waits.
_TICK = 0.002


@dataclass(eq=False)
class _Waiter:
    task_id: str
    state: str
    woken: threading.Event = field(default_factory=threading.Event)
    row: TaskRow | None = None


class ViewWatch:
    def __init__(self, view_path: Path) -> None:
        self._path = view_path
        self._lock = threading.Lock()
        self._waiters: set[_Waiter] = set()
        # Waiters registered since the last lookup: looked up at once, whatever data_version says,
        # so a change between the caller's own read and its registration is never missed.
        self._new = False
        self._thread: threading.Thread | None = None

    def wait_for_change(self, task_id: str, state: str, timeout: float) -> TaskRow | None:
        """The task's row once its state is no longer `state`; None if that did not happen within `timeout`."""
        waiter = _Waiter(task_id, state)
        with self._lock:
            self._waiters.add(waiter)
            self._new = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="view-watch", daemon=True)
                self._thread.start()
        try:
            waiter.woken.wait(timeout)
        finally:
            with self._lock:
                self._waiters.discard(waiter)
        return waiter.row

    def _watch(self) -> None:
        try:
            view = StatusView(self._path, read_only=True)
        except ViewError:
            with self._lock:
                self._thread = None
            return
        try:
            version = None
            while True:
                with self._lock:
                    if not self._waiters:
                        self._thread = None
                        return
                    waiting = list(self._waiters)
                    look = self._new
                    self._new = False
                current = view.data_version()
                if look or current != version:
                    version = current
                    self._wake_changed(view, waiting)
                time.sleep(_TICK)
        finally:
            view.close()

    @staticmethod
    def _wake_changed(view: StatusView, waiting: list[_Waiter]) -> None:
        try:
            rows = view.get_many({w.task_id for w in waiting})
        except ViewError:
            return  # the next tick tries again; waiters time out at worst
        for waiter in waiting:
            row = rows.get(waiter.task_id)
            if row is not None and row.state != waiter.state:
                waiter.row = row
                waiter.woken.set()
