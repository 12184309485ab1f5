"""The training stream's batches are bit-identical to those of the stream before issue 20's
read path (a pool of whole utterances normalised to float32 when read, windows gathered from
it): same crops, same order, same float32 values, padding +0.0. The reference below is that
stream as it was, kept here only as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import emonet
from emonet.data.crops import crop_offsets
from emonet.data.normalization import task_normalizer
from emonet.data.store_access import open_partition, partition_index
from emonet.training.streams import StreamSpec, _task_key, epoch_stream, slice_plan


def _reference(part, index, spec, norm, epoch, slice_id, n_slices):
    """The stream before: whole utterances cast and normalised when read, a float32 pool."""
    plan = slice_plan(index, spec, epoch, slice_id, n_slices)
    rng = np.random.default_rng([spec.seed, _task_key(spec.task), epoch, slice_id, 1])
    frames, starts, valid, labels = torch.zeros((1, norm.n_mels)), [], [], []

    def gather(sel):
        width = spec.window if spec.window is not None else int(valid[sel].max())
        steps = np.arange(width)[None, :]
        idx = np.where(steps < valid[sel][:, None], starts[sel][:, None] + steps, len(frames) - 1)
        x = frames.index_select(0, torch.from_numpy(idx.reshape(-1))).view(len(sel), width, -1)
        return x, torch.from_numpy(valid[sel]), torch.from_numpy(labels[sel])

    group = []
    for k, ids in enumerate(plan):
        group.append(ids)
        if sum(len(g) for g in group) < spec.buffer and k + 1 < len(plan):
            continue
        pieces, base = [frames[:-1]], len(frames) - 1
        starts, valid, labels = [starts], [valid], [labels]
        for g in (g for g in group if len(g)):
            lo, hi = int(index.offsets[g[0]]), int(index.offsets[g[-1] + 1])
            x = torch.from_numpy(np.asarray(part.read_frames(lo, hi))).float()
            pieces.append(x.sub_(norm.mean).mul_(norm.inv_std))
            lengths = np.maximum(index.lengths[g], 1)
            crop = 0 if spec.window is None else crop_offsets(lengths, spec.window, rng)
            starts.append(index.offsets[g] - lo + base + crop)
            valid.append(lengths if spec.window is None else np.minimum(lengths, spec.window))
            labels.append(index.label_ids[g])
            base += hi - lo
        group = []
        frames = torch.cat([*pieces, torch.zeros((1, norm.n_mels))])
        starts, valid, labels = (np.concatenate(a).astype(np.int64) for a in (starts, valid, labels))
        n = len(labels)
        perm = rng.permutation(n) if spec.shuffle else np.arange(n)
        n_full = n // spec.batch_size * spec.batch_size
        for i in range(0, n_full, spec.batch_size):
            yield gather(perm[i : i + spec.batch_size])
        rest = perm[n_full:]  # the carry: kept in place (the values are the same as copied out)
        starts, valid, labels = starts[rest], valid[rest], labels[rest]
    if len(labels) >= 2:
        yield gather(np.arange(len(labels)))


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(torch.int32) if t.dtype == torch.float32 else t


@pytest.mark.parametrize("band_norm", [False, True], ids=["raw-log-mels", "band-norm"])
@pytest.mark.parametrize(
    "window, batch_size, buffer, shuffle, slice_id, n_slices",
    [
        (16, 4, 1024, True, 0, 1),  # crops shorter than every clip
        (60, 3, 7, True, 0, 1),  # clips shorter than the window (padded), groups and carries
        (60, 5, 9, True, 1, 3),  # one data slice of three
        (200, 4, 1024, False, 0, 1),  # every clip padded, storage order
        (None, 3, 8, True, 0, 1),  # whole utterances, padded to the batch's longest
    ],
)
def test_batches_are_bit_identical_to_the_stream_before(
    small_store, band_norm, window, batch_size, buffer, shuffle, slice_id, n_slices
):
    store = emonet.open_store(small_store)
    part = open_partition(store, "arousal", "train")
    index = partition_index(part)
    norm = task_normalizer(store, "arousal", band_norm)
    spec = StreamSpec("arousal", batch_size, window, 5, shuffle, buffer, band_norm)
    padded = 0
    for epoch in (0, 1):
        got = list(epoch_stream(part, index, spec, norm, epoch, slice_id, n_slices))
        want = list(_reference(part, index, spec, norm, epoch, slice_id, n_slices))
        assert len(got) == len(want) > 0
        for (x, lengths, y), (x0, lengths0, y0) in zip(got, want, strict=True):
            assert x.dtype == torch.float32 and x.shape == x0.shape
            assert torch.equal(_bits(x), _bits(x0)), "values differ (bit for bit, -0.0 included)"
            assert torch.equal(lengths, lengths0) and torch.equal(y, y0)
            padded += int((lengths < x.shape[1]).sum())
    if window in (60, 200, None):
        assert padded, "the case must hold padded windows"
