"""One task's batch stream for one data slice (a DDP rank x loader worker), epoch by epoch.

An epoch of a slice: the partition's storage units (utterances grouped by the block they
start in) in an order shuffled from (seed, epoch), the slice's share of them (whole units
when there are at least as many units as slices, else every slice-th utterance), read a
run of units at a time into a shuffle buffer, cropped, shuffled and cut into batches. The
last batch of an epoch may be smaller. Everything is a function of (seed, epoch, slice),
so a stream can be rebuilt at any position without saving data: see :func:`epoch_batch_count`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from emonet.training.crops import Normalizer, random_windows
from emonet.training.store_access import PartitionIndex, read_frames

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # x [B, T, mels] float32, lengths int64, labels int64


@dataclass(frozen=True)
class StreamSpec:
    """How one task's training batches are drawn (all but the data slice)."""

    task: str
    batch_size: int = 64
    window: int = 126  # crop length in frames
    seed: int = 0
    shuffle: bool = True
    buffer: int = 1024  # utterances in the shuffle buffer


def _task_key(task: str) -> int:
    return zlib.crc32(task.encode())


def slice_plan(index: PartitionIndex, spec: StreamSpec, epoch: int, slice_id: int, n_slices: int) -> list[np.ndarray]:
    """The utterance indices this slice reads in ``epoch``, one array per storage unit, in order."""
    units = index.units
    if spec.shuffle:
        order = np.random.default_rng([spec.seed, _task_key(spec.task), epoch]).permutation(len(units))
    else:
        order = np.arange(len(units))
    n = len(index)
    if len(units) >= n_slices:
        return [np.arange(*units[u]) for u in order[slice_id::n_slices]]
    if n < n_slices:  # fewer utterances than slices: every slice sees them all (repeats)
        return [np.arange(*units[u]) for u in order]
    out = []
    for u in order:
        ids = np.arange(*units[u])
        out.append(ids[ids % n_slices == slice_id])
    return out


def epoch_batch_count(index: PartitionIndex, spec: StreamSpec, epoch: int, slice_id: int, n_slices: int) -> int:
    """Batches the slice yields in ``epoch`` (known without reading features)."""
    n = sum(len(ids) for ids in slice_plan(index, spec, epoch, slice_id, n_slices))
    return n // spec.batch_size + (1 if n % spec.batch_size >= 2 else 0)


def epoch_stream(
    part, index: PartitionIndex, spec: StreamSpec, norm: Normalizer, epoch: int, slice_id: int, n_slices: int
) -> Iterator[Batch]:
    """The slice's batches of one epoch (random crops, shuffled through the buffer)."""
    plan = slice_plan(index, spec, epoch, slice_id, n_slices)
    rng = np.random.default_rng([spec.seed, _task_key(spec.task), epoch, slice_id, 1])
    carry: Batch | None = None
    group: list[np.ndarray] = []
    for k, ids in enumerate(plan):
        group.append(ids)
        if sum(len(g) for g in group) < spec.buffer and k + 1 < len(plan):
            continue
        x, lengths, labels = _read_group(part, index, group, spec.window, rng, norm)
        group = []
        if carry is not None:
            x, lengths, labels = (np.concatenate([a, b]) for a, b in zip(carry, (x, lengths, labels), strict=True))
        perm = rng.permutation(len(labels)) if spec.shuffle else np.arange(len(labels))
        n_full = len(perm) // spec.batch_size * spec.batch_size
        for i in range(0, n_full, spec.batch_size):
            sel = perm[i : i + spec.batch_size]
            yield x[sel], lengths[sel], labels[sel]
        rest = perm[n_full:]
        carry = (x[rest], lengths[rest], labels[rest]) if len(rest) else None
    if carry is not None and len(carry[2]) >= 2:  # a lone item is dropped: BatchNorm needs two
        yield carry


def _read_group(part, index: PartitionIndex, group: list[np.ndarray], window: int, rng, norm: Normalizer) -> Batch:
    """Crops of every utterance in ``group`` (one read per contiguous run of utterances)."""
    ids = np.concatenate(group) if group else np.zeros(0, np.int64)
    if not len(ids):
        return np.zeros((0, window, len(norm.mean)), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    pieces, starts, base, frame_base = [], np.empty(len(ids), np.int64), 0, 0
    for g in group:
        if not len(g):
            continue
        lo, hi = int(index.offsets[g[0]]), int(index.offsets[g[-1] + 1])
        pieces.append(read_frames(part, lo, hi))
        starts[base : base + len(g)] = index.offsets[g] - lo + frame_base
        base += len(g)
        frame_base += hi - lo
    frames = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
    x, lengths = random_windows(frames, starts, index.lengths[ids], window, rng, norm)
    return x, lengths, index.label_ids[ids]


def stream(
    part,
    index: PartitionIndex,
    spec: StreamSpec,
    norm: Normalizer,
    slice_id: int,
    n_slices: int,
    skip: int = 0,
) -> Iterator[Batch]:
    """The slice's endless stream, epoch after epoch, starting after ``skip`` batches."""
    epoch = 0
    while skip:
        nb = epoch_batch_count(index, spec, epoch, slice_id, n_slices)
        if nb == 0:
            raise ValueError(f"task {spec.task!r}: data slice {slice_id} of {n_slices} is empty")
        if skip < nb:
            break
        skip -= nb
        epoch += 1
    while True:
        produced = 0
        for b in epoch_stream(part, index, spec, norm, epoch, slice_id, n_slices):
            produced += 1
            if skip:
                skip -= 1
                continue
            yield b
        if produced == 0:
            raise ValueError(f"task {spec.task!r}: data slice {slice_id} of {n_slices} is empty")
        epoch += 1
