"""glibc malloc tuning for CPU training: keep large activation buffers in the heap.

By default glibc serves every allocation above a dynamic threshold (128 KiB rising to at most
32 MiB) with its own mmap, and munmap returns it to the OS on free, so every training step
faults its activation buffers in again page by page (millions of minor page faults per step,
kernel time). ``keep_large_buffers()`` raises the mmap threshold to its 64-bit maximum,
forbids mmap for malloc (``M_MMAP_MAX`` 0: every buffer comes from the heap) and stops the
heap from being trimmed, so freed buffers are reused by the next step without faults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # 4 * 1024 * 1024 * sizeof(long) on 64-bit
TRIM_THRESHOLD = 1 << 30  # keep up to 1 GiB of freed heap top before giving it back

# Environment variables through which a user tunes the same glibc settings.
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")

_applied: bool | None = None


def keep_large_buffers() -> bool:
    """Apply the glibc settings to this process (once; later calls return the first result).

    Does nothing when ``EMONET_MALLOC=default`` is set, when the C library is not glibc, or
    when the user already tunes these settings (``MALLOC_*_`` variables or ``GLIBC_TUNABLES``).

    Returns:
        True when the settings were applied.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("EMONET_MALLOC", "").lower() == "default":
        return False
    if any(k in os.environ for k in USER_SETTINGS) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False  # the user's own glibc malloc settings win
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS, Windows)
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = all(
        mallopt(param, value) == 1
        for param, value in (
            (M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX),
            (M_MMAP_MAX, 0),
            (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        )
    )
    _applied = ok
    return ok
