"""Tuning of the C allocator for a node process (glibc only).

A node moving bulk data (a portal, a relay) allocates and frees buffers of 16-256 KiB at a high
rate: records, plaintexts, reads. With glibc's default thresholds the top of the heap is
returned to the kernel whenever more than a few hundred KiB there are free, and taken back on
the next allocation, so each buffer's pages are faulted in and zeroed by the kernel again:
measured at about 120,000 page faults per GB through an outlet node, and 10-15% of its CPU.
:func:`tune_allocator` keeps up to :data:`TRIM_THRESHOLD` of free heap (and grows the heap in
steps of :data:`TOP_PAD`), which removes that churn; the memory it may keep is bounded by those
two figures.

A node started by ``truststack node create`` (:mod:`trust.node.daemon`) calls it once at
start. A program that runs a :class:`~trust.node.Node` in its own process may call it too; it
changes the allocator of the whole process.
"""

from __future__ import annotations

import sys
from typing import Final

__all__ = ["MMAP_THRESHOLD", "TOP_PAD", "TRIM_THRESHOLD", "tune_allocator"]

TRIM_THRESHOLD: Final = 4 * 1024 * 1024
"""Free memory at the top of the heap kept rather than returned to the kernel (glibc's
``M_TRIM_THRESHOLD``; default 128 KiB, adjusted upwards at run time)."""
TOP_PAD: Final = 1024 * 1024
"""Extra memory taken each time the heap grows (``M_TOP_PAD``; default 128 KiB)."""
MMAP_THRESHOLD: Final = 1024 * 1024
"""Allocations at least this large get pages of their own, returned at once when freed
(``M_MMAP_THRESHOLD``; default 128 KiB, adjusted at run time): a 256 KiB read comes from the
heap."""

_M_TRIM_THRESHOLD: Final = -1
_M_TOP_PAD: Final = -2
_M_MMAP_THRESHOLD: Final = -3
_applied = False


def tune_allocator() -> bool:
    """Set the thresholds above for this process; ``True`` when applied (now or before),
    ``False`` where the C library is not glibc (nothing is changed there)."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = all(mallopt(param, value) == 1 for param, value in (
        (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, TOP_PAD),
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD)))
    _applied = ok
    return ok
