"""Long-poll support: wake a waiting status request when its own task's state changes.

One watcher thread per API process, running only while someone waits. It
learns that another connection committed to the view from SQLite's `PRAGMA
data_version`, and asks it when the view's files change (inotify on Linux:
every commit writes the WAL) or every 2 ms where there is no inotify. On a
change it reads the states of all waiting tasks in one query, reads the whole
row only of a task whose state moved, and wakes only that task's requests.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from read_model.errors import ViewError
from read_model.fold import TaskRow
from read_model.view import StatusView

try:
    from inotify_simple import INotify
    from inotify_simple import flags as inotify_flags
except ImportError:  # not Linux: the watcher polls
    INotify = None

# Without inotify a change is seen within this; each tick is one cheap PRAGMA, and only while someone waits.
_TICK = 0.002
# With inotify, data_version is still asked this often: a missed file event costs latency, never a wake-up.
_BACKSTOP = 0.25
# After a file event, data_version is asked every tick until it moves, for at most this long.
_SETTLE = 0.02


@dataclass(eq=False)
class _Waiter:
    task_id: str
    state: str
    woken: threading.Event = field(default_factory=threading.Event)
    row: TaskRow | None = None


class _FileChanges:
    """Blocks until a file in the view's directory is written, a new waiter arrives, or a timeout."""

    def __init__(self, directory: Path) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._inotify = None
        if INotify is not None:
            try:
                self._inotify = INotify(nonblocking=True)
                changed = inotify_flags.MODIFY | inotify_flags.CREATE | inotify_flags.MOVED_TO
                self._inotify.add_watch(str(directory), changed)
                self._selector.register(self._inotify.fileno(), selectors.EVENT_READ)
            except OSError:  # e.g. the inotify watch limit: fall back to polling
                if self._inotify is not None:
                    self._inotify.close()
                self._inotify = None
        self.timeout = _BACKSTOP if self._inotify is not None else _TICK

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # the pipe is full of wake-ups already
            os.write(self._wake_write, b"w")

    def wait(self, timeout: float) -> bool:
        """Whether a file changed (else: a new waiter, or the timeout)."""
        self._selector.select(timeout)
        # Drain both: one look at the view answers every event seen so far.
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_read, 4096):
                pass
        return self._inotify is not None and bool(self._inotify.read(timeout=0))

    def close(self) -> None:
        self._selector.close()
        if self._inotify is not None:
            self._inotify.close()
        os.close(self._wake_read)
        os.close(self._wake_write)


class ViewWatch:
    def __init__(self, view_path: Path) -> None:
        self._path = view_path
        self._lock = threading.Lock()
        self._waiters: set[_Waiter] = set()
        # Waiters registered since the last lookup: looked up at once, whatever data_version says,
        # so a change between the caller's own read and its registration is never missed.
        self._new = False
        self._thread: threading.Thread | None = None
        self._changes: _FileChanges | None = None

    def wait_for_change(self, task_id: str, state: str, timeout: float) -> TaskRow | None:
        """The task's row once its state is no longer `state`; None if that did not happen within `timeout`."""
        waiter = _Waiter(task_id, state)
        with self._lock:
            self._waiters.add(waiter)
            self._new = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="view-watch", daemon=True)
                self._thread.start()
            elif self._changes is not None:
                self._changes.wake()
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
        # Watching starts before the first look: a commit after that look is an event, never lost.
        changes = _FileChanges(self._path.parent)
        with self._lock:
            self._changes = changes
        try:
            version = None
            settle_until = 0.0
            timeout = changes.timeout
            while True:
                with self._lock:
                    if not self._waiters:
                        self._thread = None
                        self._changes = None
                        return
                    waiting = list(self._waiters)
                    look = self._new
                    self._new = False
                current = view.data_version()
                if look or current != version:
                    version = current
                    settle_until = 0.0
                    self._wake_changed(view, waiting)
                event = changes.wait(timeout)
                now = time.monotonic()
                if settle_until and now >= settle_until:
                    settle_until = 0.0  # nothing published: back to sleeping on file events
                if event and not settle_until:
                    # A commit writes the WAL before it publishes itself in the shared index:
                    # the first file event may come before data_version moves. Ask again soon.
                    settle_until = now + _SETTLE
                timeout = _TICK if settle_until else changes.timeout
        finally:
            changes.close()
            view.close()

    @staticmethod
    def _wake_changed(view: StatusView, waiting: list[_Waiter]) -> None:
        # States first: most looks find nothing moved, and a whole row is read only for a task that did.
        try:
            states = view.states({w.task_id for w in waiting})
            moved = [w for w in waiting if states.get(w.task_id, w.state) != w.state]
            rows = view.get_many({w.task_id for w in moved}) if moved else {}
        except ViewError:
            return  # the next look tries again; waiters time out at worst
        for waiter in moved:
            row = rows.get(waiter.task_id)
            if row is not None and row.state != waiter.state:
                waiter.row = row
                waiter.woken.set()
