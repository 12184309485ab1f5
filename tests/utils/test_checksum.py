"""emonet.utils.checksum.crc32 is zlib's CRC-32, whichever implementation computes it, so
stores written with zlib's checksums verify unchanged."""

from __future__ import annotations

import os
import zlib

import pytest

from emonet.utils import checksum

SIZES = [0, 1, 7, 64, 4095, 65_537, 1_600_000]  # empty, sub-word, around SIMD strides, a shard's size


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("fast", [True, False], ids=["installed", "zlib-fallback"])
def test_crc32_equals_zlib(size, fast, monkeypatch):
    if not fast:
        monkeypatch.setattr(checksum, "_fast_crc32", None)
    data = os.urandom(size)
    assert checksum.crc32(data) == zlib.crc32(data)
    assert checksum.crc32(memoryview(data)) == zlib.crc32(data)  # a slice of a larger buffer
    half = size // 2
    assert checksum.crc32(data[half:], checksum.crc32(data[:half])) == zlib.crc32(data)  # continued


def test_fast_implementation_installed():
    """The package install (pyproject.toml) brings ISA-L's CRC-32; zlib is only a fallback."""
    assert checksum.IMPLEMENTATION == "isal"


def test_a_flipped_bit_changes_it():
    data = bytearray(os.urandom(100_000))
    before = checksum.crc32(data)
    data[54_321] ^= 0x10
    assert checksum.crc32(data) != before
