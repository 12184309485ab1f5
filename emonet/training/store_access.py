"""The one place the trainer touches a store below its public API: whole storage blocks.

Reading one utterance at a time costs a zarr call each (hundreds per second); the data path
instead reads the frames of a run of utterances with one call and slices them in memory.
Everything here goes through :class:`~emonet.store.Partition`; only :func:`read_frames`
uses its reader, so a change of the store's internals is fixed in one function.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emonet.errors import StoreError, UnknownTaskError


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


def open_partition(store, task: str, partition: str):
    """``store.partition(task, partition)`` with the store's KeyError turned into our errors."""
    if task not in store.tasks:
        raise UnknownTaskError(f"task {task!r} is not in store {store.path}; it has: {', '.join(store.tasks)}")
    if partition not in store.partitions(task):
        raise StoreError(
            f"task {task!r} in {store.path} has no {partition!r} partition (it has: "
            f"{', '.join(store.partitions(task)) or 'none'}); extract it with 'emonet extract'"
        )
    return store.partition(task, partition)


def block_bounds(part) -> np.ndarray:
    """Frame offsets of the partition's storage blocks (shards): 0, ..., total frames."""
    return np.asarray(part._r.block_bounds, dtype=np.int64)


def read_frames(part, lo: int, hi: int) -> np.ndarray:
    """Frames ``lo:hi`` of the partition (float16 [hi - lo, mels]) in one read."""
    return np.asarray(part._r.read_frames(int(lo), int(hi)))


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
