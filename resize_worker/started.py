"""ResizeStarted only for attempts that are still running after a while.

Most attempts finish in tens of milliseconds, and their outcome already says
when they began (its time minus its duration). A record of their start would
cost the broker a produce and a fetch per consumer of the results topic, and
the projector a write, to show a STARTED that no client could see in time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class StartedNotice:
    """One thread that calls the armed `send` once its delay has passed, unless disarmed first."""

    def __init__(self, after_seconds: float) -> None:
        self._after = after_seconds
        self._changed = threading.Condition()
        self._armed: tuple[float, Callable[[], None]] | None = None
        self._thread: threading.Thread | None = None

    def arm(self, send: Callable[[], None]) -> None:
        """Call `send` if disarm() is not called within the delay (at once when the delay is 0)."""
        if self._after <= 0:
            send()
            return
        with self._changed:
            self._armed = (time.monotonic() + self._after, send)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="started-notice", daemon=True)
                self._thread.start()
            self._changed.notify()

    def disarm(self) -> None:
        """After this returns, the record is either sent already or never will be: it cannot follow the outcome."""
        with self._changed:
            self._armed = None

    def _run(self) -> None:
        with self._changed:
            while True:
                if self._armed is None:
                    self._changed.wait()
                    continue
                due, send = self._armed
                remaining = due - time.monotonic()
                if remaining > 0:
                    self._changed.wait(remaining)
                    continue
                self._armed = None
                # Sent under the lock, so disarm() (and so the outcome) waits for it.
                send()
