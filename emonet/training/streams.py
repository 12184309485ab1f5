"""One task's batch stream for one data slice (a DDP rank x loader worker), epoch by epoch.

An epoch of a slice: the partition's storage units (utterances grouped by the block they
start in) in an order shuffled from (seed, epoch), the slice's share of them (whole units
when there are at least as many units as slices, else every slice-th utterance), read a
run of units at a time into a shuffle buffer, shuffled and cut into batches of random
crops (without a window: whole utterances, each batch zero-padded to its longest). The last
batch of an epoch may be smaller (a single left-over utterance is dropped: training
BatchNorms need two items). Everything is a function of (seed, epoch, slice), so
a stream can be rebuilt at any position without saving data: see :func:`epoch_batch_count`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from emonet.data.crops import Normalized, Normalizer, crop_offsets, gather_windows, with_pad_row
from emonet.data.store_access import PartitionIndex, read_frames_cached
from emonet.errors import TrainingError

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # x [B, T, mels] float32, lengths int64, labels int64


@dataclass(frozen=True)
class StreamSpec:
    """How one task's training batches are drawn (all but the data slice)."""

    task: str
    batch_size: int = 64
    window: int | None = 126  # crop length in frames (None: whole utterances)
    seed: int = 0
    shuffle: bool = True
    buffer: int = 1024  # utterances in the shuffle buffer
    band_norm: bool = False  # standardise each mel band with the train statistics (the original: raw log-mels)


@dataclass
class _Pool:
    """Utterances in memory: their normalised frames (float32, a zero row last), where each
    crop starts, its length and label."""

    frames: torch.Tensor
    starts: np.ndarray
    valid: np.ndarray
    labels: np.ndarray

    def take(self, sel: np.ndarray) -> _Pool:
        """A compact pool of the selected utterances (their crop frames copied out)."""
        pieces = [self.frames[int(s) : int(s) + int(v)] for s, v in zip(self.starts[sel], self.valid[sel], strict=True)]
        frames = torch.cat([*pieces, self.frames[-1:]])
        starts = np.concatenate([[0], np.cumsum(self.valid[sel])[:-1]]).astype(np.int64)
        return _Pool(frames, starts, self.valid[sel].copy(), self.labels[sel].copy())


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
    carry: _Pool | None = None
    group: list[np.ndarray] = []
    bs = spec.batch_size
    for k, ids in enumerate(plan):
        group.append(ids)
        if sum(len(g) for g in group) < spec.buffer and k + 1 < len(plan):
            continue
        pool = _read_group(part, index, group, spec.window, rng, carry, norm)
        group = []
        n = len(pool.labels)
        perm = rng.permutation(n) if spec.shuffle else np.arange(n)
        n_full = n // bs * bs
        for i in range(0, n_full, bs):
            sel = perm[i : i + bs]
            x, lengths = gather_windows(pool.frames, pool.starts[sel], pool.valid[sel], _width(spec, pool.valid[sel]))
            yield x, lengths, torch.from_numpy(pool.labels[sel])
        carry = pool.take(perm[n_full:]) if n > n_full else None
    if carry is not None and len(carry.labels) >= 2:
        x, lengths = gather_windows(carry.frames, carry.starts, carry.valid, _width(spec, carry.valid))
        yield x, lengths, torch.from_numpy(carry.labels)


def _width(spec: StreamSpec, valid: np.ndarray) -> int:
    """Frames of a batch: the window, or without one the batch's longest utterance."""
    return spec.window if spec.window is not None else int(valid.max())


def _read_group(
    part, index: PartitionIndex, group: list[np.ndarray], window: int | None, rng, carry: _Pool | None, norm: Normalizer
) -> _Pool:
    """The group's utterances (one read per storage unit, normalised and cached) with their
    random crops (whole without a window), after the carried-over utterances of the previous group."""
    pieces = [carry.frames[:-1]] if carry is not None else []
    starts = [carry.starts] if carry is not None else []
    valid = [carry.valid] if carry is not None else []
    labels = [carry.labels] if carry is not None else []
    base = len(carry.frames) - 1 if carry is not None else 0
    prepare = Normalized(norm)
    for g in group:
        if not len(g):
            continue
        lo, hi = int(index.offsets[g[0]]), int(index.offsets[g[-1] + 1])
        pieces.append(read_frames_cached(part, lo, hi, prepare))
        lengths = np.maximum(index.lengths[g], 1)
        if window is None:
            starts.append(index.offsets[g] - lo + base)
            valid.append(lengths)
        else:
            starts.append(index.offsets[g] - lo + base + crop_offsets(lengths, window, rng))
            valid.append(np.minimum(lengths, window))
        labels.append(index.label_ids[g])
        base += hi - lo
    return _Pool(with_pad_row(pieces), np.concatenate(starts), np.concatenate(valid), np.concatenate(labels))


def _empty(spec: StreamSpec, slice_id: int, n_slices: int):
    return TrainingError(
        f"task {spec.task!r}: data slice {slice_id + 1} of {n_slices} (ranks x loader workers) gets fewer than 2 "
        "training utterances; use fewer -j/--workers or ranks"
    )


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
            raise _empty(spec, slice_id, n_slices)
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
            raise _empty(spec, slice_id, n_slices)
        epoch += 1
