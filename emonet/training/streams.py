"""One task's batch stream for one data slice (a DDP rank x loader worker), epoch by epoch.

An epoch of a slice: the partition's storage units (utterances grouped by the block they
start in) in an order shuffled from (seed, epoch), the slice's share of them (whole units
when there are at least as many units as slices, else every slice-th utterance), read a
run of units at a time into a shuffle buffer, shuffled and cut into batches of random
crops (without a window: whole utterances, each batch zero-padded to its longest). The
buffer holds only the crops' frames, as stored (float16); a batch's frames are cast and
normalised when it is gathered, so a window costs its own frames, not its utterance's
(but for the decoding: blocks are decoded whole). The last
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

from emonet.data.crops import Normalizer, crop_offsets, gather_windows
from emonet.data.store_access import PartitionIndex, prefetch_pieces, read_frames, read_pieces_cached
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
    """Crops in memory: their frames as stored (float16 [rows + 1, mels], each crop's rows
    contiguous, a zero row last), where each crop starts, its length and label. A crop of an
    empty utterance holds no rows: it starts at the zero row (one row of padding)."""

    frames: np.ndarray
    starts: np.ndarray
    valid: np.ndarray
    labels: np.ndarray

    def held(self) -> np.ndarray:
        """Rows each crop holds in ``frames`` (0 for an empty utterance's)."""
        return np.where(self.starts == len(self.frames) - 1, 0, self.valid)

    def take(self, sel: np.ndarray) -> _Pool:
        """A compact pool of the selected crops (their frames copied out)."""
        held = self.held()[sel]
        frames = np.concatenate([self.frames[_rows(self.starts[sel], held)], self.frames[-1:]])
        return _pool(frames, held, self.valid[sel].copy(), self.labels[sel].copy())


def _rows(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])``, vectorised."""
    total = int(counts.sum())
    begin = np.cumsum(counts) - counts
    return np.repeat(starts - begin, counts) + np.arange(total, dtype=np.int64)


def _pool(frames: np.ndarray, held: np.ndarray, valid: np.ndarray, labels: np.ndarray) -> _Pool:
    """A pool whose crops lie one after the other in ``frames`` (``held`` rows each)."""
    starts = np.cumsum(held) - held
    return _Pool(frames, np.where(held > 0, starts, len(frames) - 1).astype(np.int64), valid, labels)


class _Buffer:
    """The shuffle buffer's frame rows, allocated once per stream and grown when a group
    needs more (each group's pool is gathered into fresh batches before the next is read)."""

    def __init__(self):
        self.rows = np.zeros((0, 0), np.float16)

    def get(self, n: int, mels: int) -> np.ndarray:
        if self.rows.shape[0] < n or self.rows.shape[1] != mels:
            self.rows = np.empty((max(n, self.rows.shape[0] * 5 // 4), mels), np.float16)
        return self.rows[:n]


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
    part,
    index: PartitionIndex,
    spec: StreamSpec,
    norm: Normalizer,
    epoch: int,
    slice_id: int,
    n_slices: int,
    buffer: _Buffer | None = None,
) -> Iterator[Batch]:
    """The slice's batches of one epoch (random crops, shuffled through the buffer; ``buffer``:
    the rows to reuse, a stream's from epoch to epoch)."""
    buffer = buffer if buffer is not None else _Buffer()
    plan = slice_plan(index, spec, epoch, slice_id, n_slices)
    rng = np.random.default_rng([spec.seed, _task_key(spec.task), epoch, slice_id, 1])
    carry: _Pool | None = None
    group: list[np.ndarray] = []
    bs = spec.batch_size
    for k, ids in enumerate(plan):
        group.append(ids)
        if sum(len(g) for g in group) < spec.buffer and k + 1 < len(plan):
            continue
        pool = _read_group(part, index, group, spec.window, rng, carry, buffer)
        group = []
        n = len(pool.labels)
        perm = rng.permutation(n) if spec.shuffle else np.arange(n)
        n_full = n // bs * bs
        frames = torch.from_numpy(pool.frames)
        for i in range(0, n_full, bs):
            sel = perm[i : i + bs]
            x, lengths = gather_windows(frames, pool.starts[sel], pool.valid[sel], _width(spec, pool.valid[sel]), norm)
            yield x, lengths, torch.from_numpy(pool.labels[sel])
        carry = pool.take(perm[n_full:]) if n > n_full else None
    if carry is not None and len(carry.labels) >= 2:
        frames = torch.from_numpy(carry.frames)
        x, lengths = gather_windows(frames, carry.starts, carry.valid, _width(spec, carry.valid), norm)
        yield x, lengths, torch.from_numpy(carry.labels)


def _width(spec: StreamSpec, valid: np.ndarray) -> int:
    """Frames of a batch: the window, or without one the batch's longest utterance."""
    return spec.window if spec.window is not None else int(valid.max())


def _read_group(
    part, index: PartitionIndex, group: list[np.ndarray], window: int | None, rng, carry: _Pool | None, buffer: _Buffer
) -> _Pool:
    """The group's crops (random, or whole utterances without a window) after the carried-over
    crops of the previous group, in ``buffer``'s rows: only the crops' rows are copied, from
    one read per storage unit and block (through the frame cache, as stored). The crops are
    drawn in the group's order and the units read in storage order, so that a unit's tail in
    the next block and that block's own unit are read (and checked) from the same bytes."""
    before = [carry] if carry is not None else []
    units = []  # (first frame, last frame + 1, crop starts from the first frame, rows held)
    valid, labels = [p.valid for p in before], [p.labels for p in before]
    for g in group:
        if not len(g):
            continue
        lo, hi = int(index.offsets[g[0]]), int(index.offsets[g[-1] + 1])
        lengths = np.maximum(index.lengths[g], 1)
        starts = index.offsets[g] - lo
        if window is not None:
            starts = starts + crop_offsets(lengths, window, rng)
            lengths = np.minimum(lengths, window)
        units.append((lo, hi, starts, np.where(index.lengths[g] > 0, lengths, 0)))
        valid.append(lengths)
        labels.append(index.label_ids[g])
    if not units and carry is None:  # a slice with no utterance in this group
        return _Pool(np.zeros((1, 0), np.float16), *(np.zeros(0, np.int64) for _ in range(3)))
    held = [p.held() for p in before] + [u[3] for u in units]
    n_rows = sum(int(h.sum()) for h in held)
    first = np.cumsum([0] + [int(h.sum()) for h in held])  # each part's first row in the buffer
    out = None if carry is None else buffer.get(n_rows + 1, carry.frames.shape[1])
    if carry is not None:
        out[: first[1]] = carry.frames[:-1]
    in_order = sorted(range(len(units)), key=lambda u: units[u][0])
    prefetch_pieces(part, [units[u][:2] for u in in_order])  # cold blocks: the disk reads ahead
    for u in in_order:
        lo, hi, starts, h = units[u]
        rows = _rows(starts, h)  # ascending: a unit's crops do not overlap
        pos = int(first[u + len(before)])
        for a, frames in read_pieces_cached(part, lo, hi):
            out = buffer.get(n_rows + 1, frames.shape[1]) if out is None else out
            end = int(np.searchsorted(rows, a - lo + len(frames)))
            done = pos - int(first[u + len(before)])
            np.take(frames, rows[done:end] - (a - lo), axis=0, out=out[pos : pos + end - done])
            pos += end - done
    if out is None:  # only empty utterances: no frame read
        out = buffer.get(1, read_frames(part, 0, 0).shape[1])
    out[n_rows] = 0
    return _pool(out, np.concatenate(held), np.concatenate(valid), np.concatenate(labels))


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
    epoch, buffer = 0, _Buffer()
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
        for b in epoch_stream(part, index, spec, norm, epoch, slice_id, n_slices, buffer):
            produced += 1
            if skip:
                skip -= 1
                continue
            yield b
        if produced == 0:
            raise _empty(spec, slice_id, n_slices)
        epoch += 1
