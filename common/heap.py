"""glibc's heap settings for the roles that move large buffers: fewer page faults, bounded retention.

- The resize child (`keep_freed_buffers`): by default glibc serves an allocation
  over 128 KiB (up to 32 MiB as it adapts) with fresh pages from mmap and unmaps
  them on free, so every decoded picture and every copy of its pixels pays a page
  fault per 4 KiB on first touch: on this class of virtual machine about a third
  of a 1920x1080 -> 1280x720 resize (40 ms against 62 ms with the OpenCV path,
  bench/engine_bench.py). Served from the heap and kept there, the next task
  reuses pages already mapped. The heap keeps up to TRIM_BYTES free before giving
  memory back; a child that meets its memory limit is replaced anyway.
- The API (`limit_arenas`): its threads would get malloc arenas of their own
  (up to eight per core), each keeping the freed upload buffers it once held.
  In 3,000-upload imports (`python -m bench.bulk_bench --uploads 3000`) the API's resident
  memory rose 61 MB without this and 43 MB with it (and with the views' small
  page caches both times). Its threads mostly wait on I/O.

Elsewhere (musl, macOS) nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

# Allocations up to this size come from the heap (glibc's M_MMAP_THRESHOLD).
MMAP_THRESHOLD_BYTES = 64 * 1024 * 1024
# Free memory at the top of the heap beyond this is given back (glibc's M_TRIM_THRESHOLD).
TRIM_BYTES = 128 * 1024 * 1024
# Malloc arenas of a threaded server (glibc's M_ARENA_MAX).
SERVER_ARENAS = 2
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def _mallopt() -> Callable[[int, int], int] | None:
    try:
        mallopt: Callable[[int, int], int] = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return None
    return mallopt


def _set(settings: list[tuple[int, int]], what: str) -> bool:
    mallopt = _mallopt()
    if mallopt is None:
        return False
    ok = all(mallopt(option, value) == 1 for option, value in settings)
    if not ok:
        log.warning("the C library refused the heap settings for %s", what)
    return ok


def keep_freed_buffers() -> bool:
    """Pixel buffers kept on the heap for the next task; False where the C library is not glibc."""
    return _set([(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (_M_TRIM_THRESHOLD, TRIM_BYTES)], "the resize child")


def limit_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """At most `arenas` malloc arenas in this process; call before its threads start allocating."""
    return _set([(_M_ARENA_MAX, arenas)], "the API")
