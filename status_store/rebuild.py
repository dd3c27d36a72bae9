"""Rebuild the view from the topics: replay from offset 0 into a fresh file, then swap it in."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from common.settings import Settings
from read_model.view import StatusView
from status_store.projector import Projector

log = logging.getLogger(__name__)


def rebuild(settings: Settings, view_path: Path | None = None) -> int:
    """Replay both topics up to their current end into a new view and swap it in. Returns events."""
    target = view_path or settings.view_path
    fresh = target.with_name(target.name + ".rebuild")
    for leftover in (fresh, fresh.with_name(fresh.name + "-wal"), fresh.with_name(fresh.name + "-shm")):
        leftover.unlink(missing_ok=True)
    started = time.monotonic()
    projector = Projector(settings, view_path=fresh)
    try:
        events = projector.run(until_caught_up=True)
    finally:
        projector.close()
    with StatusView(target) as live:
        # A running projector sees the new generation and re-seeks to the rebuilt offsets.
        live.replace_with(fresh)
    for leftover in (fresh, fresh.with_name(fresh.name + "-wal"), fresh.with_name(fresh.name + "-shm")):
        leftover.unlink(missing_ok=True)
    log.info("rebuilt view from %d events in %.1fs", events, time.monotonic() - started)
    return events
