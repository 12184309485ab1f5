"""The store backends through one registry: name -> partition reader, block layout (the
writer's side) and metadata I/O. Everything else in the store and in extraction asks the
registry instead of testing the backend's name.

A backend's implementation module (zarr, webdataset) is imported only when its reader or
layout is first asked for: zarr alone takes ~0.35 s to import."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from emonet.errors import ConfigError, StoreCorruptError
from emonet.utils.fs import atomic_write_json, read_json

if TYPE_CHECKING:
    from emonet.store.codec import Codec
    from emonet.store.staging import BlockLayout

META_KEY = "emonet"


class PartitionReader(Protocol):
    """What a backend reads of one complete partition. The per-utterance arrays are read
    when it is opened; the frames are read a block (zarr shard, tar) at a time."""

    files: list[str]  # the csv's file keys, in order
    labels: np.ndarray  # int64 class index, -1 unlabelled
    offsets: np.ndarray  # int64 [n + 1], frame offset of each utterance
    seconds: np.ndarray  # float64 original durations
    block_bounds: np.ndarray  # int64 frame offsets of block edges, 0 ... total frames

    def block_path(self, k: int) -> Path:
        """The file that holds block k."""

    def read_block(self, k: int, blob: bytes | None = None) -> np.ndarray:
        """float16 [frames, n_mels] of block k, decoded from ``blob`` (the block file's
        bytes, read and checked by the caller) or, without it, from the file read now."""

    def decode(self, k: int, blob: bytes, a: int, z: int) -> np.ndarray:
        """float16 frames ``a:z`` (counted from block k's first frame) decoded from
        ``blob``, block k's file bytes, and from nothing else. Damaged bytes raise."""


@dataclass(frozen=True)
class Backend:
    """One store format: where its metadata lives and which module reads and writes it."""

    name: str
    module: str  # implementation: make_layout(frames_per_shard, codec) and Reader(path)
    zarr_meta: bool  # metadata in zarr group attributes (zarr.json), else in <kind>.json

    def _impl(self):
        return importlib.import_module(self.module)

    def layout(self, frames_per_shard: int | None = None, codec: Codec | None = None) -> BlockLayout:
        """The writer's block layout (``frames_per_shard``: block size; ``codec``: the
        frames' compression, :mod:`emonet.store.codec`; None: the defaults)."""
        return self._impl().make_layout(frames_per_shard, codec)

    def open_partition(self, path: Path) -> PartitionReader:
        """A reader of the complete partition at ``path``."""
        return self._impl().Reader(Path(path))

    def meta_file_name(self, kind: str) -> str:
        return "zarr.json" if self.zarr_meta else f"{kind}.json"

    def write_meta(self, node: Path, kind: str, meta: dict) -> None:
        """Writes the ``kind`` (store, task, partition) record of ``node`` atomically."""
        node.mkdir(parents=True, exist_ok=True)
        payload = {"kind": kind, **meta}
        target = node / self.meta_file_name(kind)
        if self.zarr_meta:  # a zarr v3 group: keep what zarr wrote, set our attribute
            doc = read_json(target) if target.is_file() else {"zarr_format": 3, "node_type": "group"}
            doc.setdefault("attributes", {})[META_KEY] = payload
        else:
            doc = {META_KEY: payload}
        atomic_write_json(target, doc)

    def read_meta(self, node: Path, kind: str) -> dict | None:
        """The node's record, or None if it is not an emonet node of that kind. A record
        file that is not valid JSON raises StoreCorruptError."""
        target = node / self.meta_file_name(kind)
        if not target.is_file():
            return None
        try:
            doc = read_json(target)
        except (ValueError, UnicodeDecodeError):
            fix = (
                "restore it from a copy of the store, or extract into a new --store"
                if kind == "store"
                else "restore the store from a copy, or re-run the 'emonet extract' command that made it "
                "with --overwrite"
            )
            raise StoreCorruptError(f"{target}: metadata is not valid JSON (corrupt); {fix}") from None
        if not isinstance(doc, dict):
            return None
        meta = (doc.get("attributes") or {}).get(META_KEY) if self.zarr_meta else doc.get(META_KEY)
        if not isinstance(meta, dict) or meta.get("kind") != kind:
            return None
        return {k: v for k, v in meta.items() if k != "kind"}


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("zarr", "emonet.store.zarr_backend", zarr_meta=True),
        Backend("webdataset", "emonet.store.wds_backend", zarr_meta=False),
    )
}


def get_backend(name: str) -> Backend:
    """The registered backend ``name`` (ConfigError naming the choices otherwise)."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown store format {name!r}; choose one of: {', '.join(BACKENDS)}") from None
