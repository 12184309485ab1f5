"""The blosc setting both backends compress frames with (one definition).

Measured on log-mel float16 (bench/README.md, "Cold reads: codecs (issue 20)"): zstd
level 3 with byte shuffle and 256 KiB blocks keeps the store 2.6x smaller than float32;
blosc-lz4 decodes ~2x faster but leaves it 2.2x smaller, and decoding is not what limits
the trainer's cold reads. Blosc frames name their compressor, so a store written with
another blosc setting reads as it is."""

from __future__ import annotations

from numcodecs import Blosc

CNAME, CLEVEL, SHUFFLE, BLOCKSIZE = "zstd", 3, "shuffle", 262144
SHUFFLE_IDS = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}  # numcodecs' Blosc constants


def numcodecs_blosc() -> Blosc:
    """The setting as a numcodecs ``Blosc`` (the webdataset backend's per-sample codec)."""
    return Blosc(cname=CNAME, clevel=CLEVEL, shuffle=SHUFFLE_IDS[SHUFFLE], blocksize=BLOCKSIZE)
