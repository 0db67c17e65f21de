"""A steady C heap for processes that read training items (glibc malloc tuning).

A training item allocates and frees a few MB of numpy temporaries (decoded chunks, float32
copies, crops). glibc serves such blocks from the heap once its *dynamic* mmap threshold
has grown past them, and trims the top of the heap back to the OS whenever more than twice
that threshold is free. How far the threshold has grown depends on the process's history
(the largest block it ever freed), so in some processes every item shrinks the heap and
the next one grows it again: measured on TreeSatAI-TS items, ~750 page faults per item and
twice the CPU time, in one process out of two, whatever the data source
(``benchmarks/bench_data.py``). :func:`steady_heap` fixes both thresholds at the values the
dynamic rule reaches at most (mmap above 32 MiB, trim above 64 MiB of free top), so the
cost of an item no longer depends on what the process did before. A process keeps at most
64 MiB of freed heap for reuse.

It is a no-op where the C library has no ``mallopt`` (musl, macOS, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

#: ``mallopt`` parameters (glibc ``malloc.h``).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: The largest value glibc's dynamic mmap threshold reaches on 64-bit systems.
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD


@functools.lru_cache(maxsize=1)
def _mallopt() -> object | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return None


_DONE_IN: set[int] = set()


def steady_heap() -> bool:
    """Fix glibc's mmap and trim thresholds in this process (once); True if applied."""
    if os.getpid() in _DONE_IN:
        return True
    mallopt = _mallopt()
    if mallopt is None:
        return False
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1  # type: ignore[operator]
    ok = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok  # type: ignore[operator]
    if ok:
        _DONE_IN.add(os.getpid())
    return ok
