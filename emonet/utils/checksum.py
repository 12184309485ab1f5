"""CRC-32 (IEEE 802.3, the polynomial of zlib.crc32) at the speed of the CPU's carry-less
multiply: ISA-L's SIMD kernel (the ``isal`` package, ~4.6x zlib's rate on a Zen 3:
bench/README.md) where it is installed, else zlib's. Both give the same value for the same
bytes, so stores written before read and verify as they did."""

from __future__ import annotations

import zlib

try:  # ISA-L: same CRC-32, SIMD (PCLMULQDQ / ARMv8 PMULL)
    from isal.isal_zlib import crc32 as _fast_crc32
except ImportError:  # a platform without an isal wheel: zlib's table-driven CRC-32
    _fast_crc32 = None

IMPLEMENTATION = "isal" if _fast_crc32 is not None else "zlib"


def crc32(data, value: int = 0) -> int:
    """CRC-32 of ``data`` (bytes-like), continuing from ``value``; equal to ``zlib.crc32``."""
    if _fast_crc32 is not None:
        return _fast_crc32(data, value)
    return zlib.crc32(data, value)
