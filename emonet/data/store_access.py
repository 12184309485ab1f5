"""Frame access for the data path: whole runs of utterances read at once.

Reading one utterance at a time costs a zarr call each (hundreds per second); the data path
instead reads the frames of a run of utterances with one call and slices them in memory.
Everything here goes through the public API of :class:`~emonet.store.Partition`
(``block_bounds``, ``read_frames``: a checked read of a frame range).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emonet.errors import StoreError, UnknownTaskError
from emonet.store import open_store


@dataclass(frozen=True)
class PartitionIndex:
    """What the data path needs of a partition without reading features: per-utterance
    labels, offsets and lengths, and the utterances grouped by storage block (``units``:
    utterance index ranges, one per block in which utterances start)."""

    label_ids: np.ndarray  # int64 [n]
    offsets: np.ndarray  # int64 [n + 1]
    lengths: np.ndarray  # int64 [n]
    units: np.ndarray  # int64 [u, 2]: first and one-past-last utterance of each unit

    def __len__(self) -> int:
        return len(self.lengths)


def as_store(store):
    """A FeatureStore, given one or a path."""
    if isinstance(store, (str, Path)):
        return open_store(store)
    return store


def resolve_tasks(stores: list, tasks: list[str], option: str = "-t/--tasks") -> dict[str, object]:
    """task -> the one store of ``stores`` that holds it, for each of ``tasks`` in order.

    Raises:
        UnknownTaskError: a task that no store holds (the stores' tasks are named).
        StoreError: a task that several stores hold (one must be given).
    """
    have = "; ".join(f"{s.path}: {', '.join(s.tasks) or 'no tasks'}" for s in stores)
    out = {}
    for task in tasks:
        holders = [s for s in stores if task in s.tasks]
        if not holders:
            raise UnknownTaskError(
                f"task {task!r} is in none of the stores ({have}); give the store that holds it or check {option}"
            )
        if len(holders) > 1:
            raise StoreError(
                f"task {task!r} is in several stores ({', '.join(str(s.path) for s in holders)}); give only one of them"
            )
        out[task] = holders[0]
    return out


def open_partition(store, task: str, partition: str):
    """``store.partition(task, partition)`` with the store's KeyError turned into our errors.

    zarr arrays are opened with zarr's fused codec pipeline (opt-in in zarr 3.3+): it reads a
    shard 1.5-3x faster than the default pipeline here (bench/README.md). The pipeline is
    bound when an array is opened, so this choice stays with the trainer's readers."""
    if task not in store.tasks:
        raise UnknownTaskError(f"task {task!r} is not in store {store.path}; it has: {', '.join(store.tasks)}")
    if partition not in store.partitions(task):
        raise StoreError(
            f"task {task!r} in {store.path} has no {partition!r} partition (it has: "
            f"{', '.join(store.partitions(task)) or 'none'}); extract it with 'emonet extract'"
        )
    return _with_fused_pipeline(lambda: store.partition(task, partition))


def _with_fused_pipeline(open_fn):
    try:
        import zarr

        ctx = zarr.config.set({"codec_pipeline.path": "zarr.core.codec_pipeline.FusedCodecPipeline"})
    except Exception:  # another zarr: its default pipeline
        return open_fn()
    with ctx:
        return open_fn()


def block_bounds(part) -> np.ndarray:
    """Frame offsets of the partition's storage blocks (shards): 0, ..., total frames."""
    return np.asarray(part.block_bounds, dtype=np.int64)


def read_frames(part, lo: int, hi: int) -> np.ndarray:
    """Frames ``lo:hi`` of the partition (float16 [hi - lo, mels]) in one read (checked
    against the store's block checksums where the store has them)."""
    return np.asarray(part.read_frames(int(lo), int(hi)))


class FrameCache:
    """Decoded (and prepared) frame runs kept in memory up to a byte budget, least recently
    used out, so a partition that fits is decoded once per process, not once per epoch."""

    def __init__(self, budget_bytes: int):
        self.budget, self.used = int(budget_bytes), 0
        self._data: OrderedDict[tuple, object] = OrderedDict()

    @staticmethod
    def key(part, lo: int, hi: int, prepare=None) -> tuple:
        return (str(part.path), int(lo), int(hi), getattr(prepare, "cache_key", None))

    def __contains__(self, key: tuple) -> bool:
        return key in self._data

    def get(self, part, lo: int, hi: int, prepare=None):
        """Frames ``lo:hi`` of ``part`` passed through ``prepare`` (keyed by its ``cache_key`` too)."""
        key = self.key(part, lo, hi, prepare)
        hit = self._data.get(key)
        if hit is not None:
            self._data.move_to_end(key)
            return hit
        frames = read_frames(part, lo, hi)
        if prepare is not None:
            frames = prepare(frames)
        if frames.nbytes <= self.budget:
            self._data[key] = frames
            self.used += frames.nbytes
            while self.used > self.budget:
                _, old = self._data.popitem(last=False)
                self.used -= old.nbytes
        return frames


CACHE = FrameCache(int(float(os.environ.get("EMONET_CACHE_MB", "2048")) * 2**20))


def read_frames_cached(part, lo: int, hi: int, prepare=None):
    """:func:`read_frames` (then ``prepare``) through the process's :data:`CACHE` (budget:
    ``EMONET_CACHE_MB``, default 2048 MiB per process; 0 turns it off)."""
    return CACHE.get(part, int(lo), int(hi), prepare)


def _pieces(part, lo: int, hi: int) -> list[tuple[int, int]]:
    """The spans ``(a, z)`` of frames ``lo:hi`` that lie in one storage block each."""
    b = block_bounds(part)
    k0, k1 = int(np.searchsorted(b, lo, side="right") - 1), int(np.searchsorted(b, hi, side="left"))
    spans = [(max(int(lo), int(b[k])), min(int(hi), int(b[k + 1]))) for k in range(max(k0, 0), k1)]
    return [(a, z) for a, z in spans if z > a]


def read_pieces_cached(part, lo: int, hi: int, prepare=None) -> list[tuple[int, object]]:
    """Frames ``lo:hi`` as one piece per storage block they lie in, ``(first frame, frames)``,
    each through :func:`read_frames_cached`: nothing joins them (a run that crosses into the
    next block costs no copy of the whole run, as one :func:`read_frames` would)."""
    return [(a, read_frames_cached(part, a, z, prepare)) for a, z in _pieces(part, lo, hi)]


def prefetch_pieces(part, runs: list[tuple[int, int]], prepare=None) -> None:
    """Starts the OS reading the block files of the frame runs ``(lo, hi)`` that
    :func:`read_pieces_cached` will not find in :data:`CACHE` (``Partition.prefetch``), so a
    cold read of one block overlaps with the work on the blocks before it."""
    prefetch = getattr(part, "prefetch", None)
    if prefetch is None:
        return
    for lo, hi in runs:
        for a, z in _pieces(part, lo, hi):
            if CACHE.key(part, a, z, prepare) not in CACHE:
                prefetch(a, z)


def partition_index(part) -> PartitionIndex:
    """The partition's :class:`PartitionIndex` (no feature bytes are read)."""
    offsets = np.asarray(part.offsets, dtype=np.int64)
    n = len(offsets) - 1
    starts = offsets[:-1]
    bounds = block_bounds(part)
    block_of = np.searchsorted(bounds, starts, side="right") - 1 if n else np.zeros(0, np.int64)
    edges = np.flatnonzero(np.diff(block_of)) + 1 if n else np.zeros(0, np.int64)
    first = np.concatenate([[0], edges]).astype(np.int64) if n else np.zeros(0, np.int64)
    last = np.concatenate([edges, [n]]).astype(np.int64) if n else np.zeros(0, np.int64)
    return PartitionIndex(
        label_ids=np.asarray(part.label_ids, dtype=np.int64),
        offsets=offsets,
        lengths=np.diff(offsets),
        units=np.stack([first, last], axis=1) if n else np.zeros((0, 2), np.int64),
    )
