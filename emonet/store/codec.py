"""The named blosc settings both backends compress frames with (``emonet extract --codec``;
one definition: :data:`CODECS`).

Measured on log-mel float16 (bench/README.md, "Cold reads: codecs (issue 20)"): ``zstd3``,
the default (zstd level 3, byte shuffle, 256 KiB blocks), keeps the store 2.6x smaller than
float32; ``lz4`` (level 1) decodes ~2x faster but leaves it 2.1x smaller (~1.2x larger);
``none`` stores the bytes as they are (zarr: raw chunks; webdataset: blosc frames of level
0, a copy), fastest to decode and largest. Blosc frames name their compressor, so a store
written with any blosc setting reads as it is: readers never need the name."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from numcodecs import Blosc

from emonet.errors import ConfigError

SHUFFLE_IDS = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}  # numcodecs' Blosc constants


@dataclass(frozen=True)
class Codec:
    """One named setting. Small and picklable: the block layouts carry it to the workers."""

    name: str
    cname: str  # blosc compressor (zstd, lz4, ...)
    clevel: int  # 0: no compression (zarr writes raw chunks, webdataset copying blosc frames)
    shuffle: str = "shuffle"
    blocksize: int = 262144  # 256 KiB: zstd needs the context (0: blosc's automatic size)

    @property
    def raw(self) -> bool:
        return self.clevel == 0

    def key_suffix(self) -> str:
        """What a block layout's key adds for this setting: nothing for the default, so the
        staging folders of runs from before ``--codec`` still resume; else ``:<name>``."""
        return "" if self.name == DEFAULT else f":{self.name}"

    def numcodecs_blosc(self) -> Blosc:
        """The setting as a numcodecs ``Blosc`` (the webdataset backend's per-sample codec)."""
        return _numcodecs_blosc(self)


@cache
def _numcodecs_blosc(setting: Codec) -> Blosc:
    s = setting
    return Blosc(cname=s.cname, clevel=s.clevel, shuffle=SHUFFLE_IDS[s.shuffle], blocksize=s.blocksize)


DEFAULT = "zstd3"  # the store's size target
CODECS: dict[str, Codec] = {
    c.name: c
    for c in (
        Codec("zstd3", "zstd", 3),  # the default, the one setting before --codec
        Codec("lz4", "lz4", 1),  # cold reads from disk decode ~2x faster, store ~1.2x larger
        Codec("none", "lz4", 0, "noshuffle"),  # no compression
    )
}


def get_codec(name: str) -> Codec:
    """The named setting (ConfigError naming the option and the choices otherwise)."""
    try:
        return CODECS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown --codec {name!r}; choose one of: {', '.join(CODECS)}") from None


DEFAULT_CODEC = CODECS[DEFAULT]
