"""The resize child's heap: freed pixel buffers are kept for the next task instead of going back to the kernel.

By default glibc serves an allocation over 128 KiB (up to 32 MiB as it adapts) with
fresh pages from mmap and unmaps them on free, so every decoded picture and every
copy of its pixels pays a page fault per 4 KiB on first touch: on this class of
virtual machine about a third of a 1920x1080 -> 1280x720 resize (40 ms against
62 ms with the OpenCV path, bench/engine_bench.py). Served from the heap and
kept there, the next task reuses pages already mapped. The heap keeps up to
TRIM_BYTES free before giving memory back; a child that meets its memory limit
is replaced anyway (isolation.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# Allocations up to this size come from the heap (glibc's M_MMAP_THRESHOLD).
MMAP_THRESHOLD_BYTES = 64 * 1024 * 1024
# Free memory at the top of the heap beyond this is given back (glibc's M_TRIM_THRESHOLD).
TRIM_BYTES = 128 * 1024 * 1024
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_buffers() -> bool:
    """Set this process's glibc heap thresholds; False where the C library is not glibc (nothing changed)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES) == 1
    if not ok:
        log.warning("the C library refused the heap thresholds; buffers go back to the kernel after each task")
    return ok
