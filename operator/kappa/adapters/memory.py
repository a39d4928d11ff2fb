"""Giving back to the system the memory the C allocator keeps after a burst of work: a thousand StreamJobs
created, or upgraded after a restart, at once.

glibc's malloc keeps what the process frees for its next allocations, in its heap and in its per-thread
arenas, and gives it back on its own only from the top of the heap. In the scale benchmark at 1,000 jobs
(benchmarks/README.md), 77 of the 111 MiB glibc held at rest were free; `malloc_trim(0)` gave 69 MiB back
(RSS 290 -> 221 MiB). Dask's workers call it for the same reason (distributed/worker_memory.py,
`trim_memory`). No library wraps it: ctypes, as Dask does. Other C libraries (musl): nothing to do.

Python's own allocator (pymalloc) keeps objects of up to 512 bytes in 1 MiB arenas of its own, and frees an
arena only when all of it is free: this does not reach those."""

from __future__ import annotations

import asyncio
import ctypes
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

TRIM_INTERVAL = 60.0
"""Seconds between trims: a trim walks the allocator's free lists (milliseconds) and holds its locks."""


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def trim() -> bool:
    """Blocking. Whether glibc gave memory back (False on another C library)."""
    return bool(_TRIM(0)) if _TRIM is not None else False


async def trim_periodically(stop: asyncio.Event, interval: float = TRIM_INTERVAL) -> None:
    """Until `stop` is set, trim every `interval` seconds, in a worker thread."""
    if _TRIM is None:
        log.info("not glibc: memory the C allocator keeps is not given back")
        return
    while True:
        try:
            await asyncio.wait_for(stop.wait(), interval)
            return
        except TimeoutError:
            await asyncio.to_thread(trim)


__all__ = ["TRIM_INTERVAL", "trim", "trim_periodically"]
