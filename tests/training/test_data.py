"""The data path on real stores: crops, padding, normalisation, shuffling, slices, resume."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import emonet
from emonet.data.batching import padded_batch, utterance_batches
from emonet.data.crops import normalize
from emonet.data.normalization import task_normalizer
from emonet.data.store_access import partition_index
from emonet.training import batches
from emonet.training.loader import RoundRobinBatches, TaskSource, make_loader
from emonet.training.streams import StreamSpec, slice_plan, stream


def _normalised(store, task, part="train", band_norm=True):
    """The stored frames as float32; with ``band_norm`` standardised with the train statistics."""
    mean, std = store.normalization(task) if band_norm else (0.0, 1.0)
    return [(x.astype(np.float32) - mean) / std for _, _, x in store.partition(task, part)]


@pytest.mark.parametrize("band_norm", [False, True], ids=["raw-log-mels", "band-norm"])
def test_batches_yield_whole_clips_in_storage_order_without_shuffle(small_store, band_norm):
    store = emonet.open_store(small_store)
    expect = _normalised(store, "acted", band_norm=band_norm)
    labels = store.partition("acted", "train").label_ids
    got_x, got_y = [], []
    for x, lengths, y in batches(store, "acted", batch_size=6, window=100.0, shuffle=False, band_norm=band_norm):
        assert x.dtype == torch.float32 and lengths.dtype == torch.int64 and y.dtype == torch.int64
        assert x.shape[1] == 1 + int(100.0 * 16000) // 512  # the window's frames, padded
        for i in range(len(y)):
            n = int(lengths[i])
            got_x.append(x[i, :n].numpy())
            assert not x[i, n:].any(), "padding must be exactly zero"
        got_y.extend(y.tolist())
    assert got_y == labels.tolist()
    for a, b in zip(got_x, expect, strict=True):
        if band_norm:
            np.testing.assert_allclose(a, b, atol=1e-4)
        else:  # the original's raw log-mels: the stored values exactly
            np.testing.assert_array_equal(a, b)


def test_random_crops_are_windows_of_their_utterance(small_store):
    store = emonet.open_store(small_store)
    expect = _normalised(store, "arousal", band_norm=False)
    window = 1 + int(0.5 * 16000) // 512  # 16 frames
    seen = 0
    for x, lengths, _ in batches(store, "arousal", batch_size=4, window=0.5, shuffle=False, seed=3):
        assert x.shape[1] == window
        for i in range(len(lengths)):
            ref = expect[seen]
            n = int(lengths[i])
            assert n == min(len(ref), window)
            starts = [s for s in range(len(ref) - n + 1) if np.allclose(ref[s : s + n], x[i, :n].numpy(), atol=1e-4)]
            assert starts, "a crop must be a contiguous window of its utterance"
            seen += 1
    assert seen == len(expect)


def test_shuffled_epochs_cover_every_utterance_once_and_repeat_by_seed(small_store):
    store = emonet.open_store(small_store)
    labels = sorted(store.partition("valence", "train").label_ids.tolist())

    def epoch(seed, ep):
        out = list(batches(store, "valence", batch_size=4, window=0.5, seed=seed, epoch=ep))
        return torch.cat([y for _, _, y in out]), torch.cat([x for x, _, _ in out])

    y0, x0 = epoch(0, 0)
    assert sorted(y0.tolist()) == labels
    y0b, x0b = epoch(0, 0)
    assert torch.equal(x0, x0b) and torch.equal(y0, y0b)
    _, x1 = epoch(0, 1)
    assert not torch.equal(x0, x1), "another epoch draws another order and other crops"


def test_slices_split_the_partition_disjointly(small_store):
    store = emonet.open_store(small_store)
    index = partition_index(store.partition("valence", "train"))
    assert len(index.units) >= 4, "the fixture's tiny shards must give several units"
    spec = StreamSpec("valence", batch_size=4, window=16)
    for n_slices in (1, 2, 3, len(index.units) + 1):  # the last forces the per-utterance split
        parts = [np.concatenate(slice_plan(index, spec, 5, s, n_slices)) for s in range(n_slices)]
        allids = np.concatenate(parts)
        assert sorted(allids.tolist()) == list(range(len(index))), n_slices


def test_stream_resumes_exactly_after_skipped_batches(small_store):
    store = emonet.open_store(small_store)
    part = store.partition("acted", "train")
    index, norm = partition_index(part), task_normalizer(store, "acted", True)
    spec = StreamSpec("acted", batch_size=3, window=10, seed=7, buffer=4)
    full = stream(part, index, spec, norm, 1, 2)
    ref = [next(full) for _ in range(15)]  # crosses several epochs of this slice
    for skip in (0, 4, 11):
        resumed = stream(part, index, spec, norm, 1, 2, skip=skip)
        for want in ref[skip:]:
            got = next(resumed)
            for a, b in zip(got, want, strict=True):
                np.testing.assert_array_equal(a, b)


def test_utterance_batches_are_whole_utterances_split_over_ranks(small_store):
    store = emonet.open_store(small_store)
    part = store.partition("acted", "devel")
    index, norm = partition_index(part), task_normalizer(store, "acted", True)
    whole = list(utterance_batches(part, index, norm, 2))
    ids = np.concatenate([i for i, _, _ in whole])
    assert sorted(ids.tolist()) == list(range(len(part)))
    assert np.concatenate([le for _, _, le in whole]).tolist() == part.lengths[ids].tolist()
    ranks = [list(utterance_batches(part, index, norm, 2, rank=r, world=2)) for r in range(2)]
    for r, got in enumerate(ranks):
        assert sorted(np.concatenate([i for i, _, _ in got]).tolist()) == list(range(r, len(part), 2))
    # each utterance normalised whole and zero-padded, as the predictor pads audio
    for ids, x, lengths in whole:
        pieces = [normalize(part.logmel(int(i), np.float16), norm) for i in ids]
        px, plengths = padded_batch(pieces)
        assert torch.equal(lengths, plengths) and torch.equal(x, px)
        assert all((x[j, int(n) :] == 0).all() for j, n in enumerate(lengths))


@pytest.mark.parametrize("partition, window", [("devel", None), ("train", 0.2)], ids=["whole", "crops"])
def test_webdataset_store_reads_the_same_features(small_store, wds_store, partition, window):
    """The same batches from both formats, whole utterances and random crops, without a
    warning (a webdataset sample's decoded buffer is read-only)."""
    z, w = emonet.open_store(small_store), emonet.open_store(wds_store)
    # storage order: the formats cut their blocks differently, so shuffled orders differ
    a = list(batches(z, "acted", partition=partition, batch_size=3, window=window, shuffle=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = list(batches(w, "acted", partition=partition, batch_size=3, window=window, shuffle=False))
    assert len(a) == len(b) > 0
    for (xa, la, ya), (xb, lb, yb) in zip(a, b, strict=True):
        assert torch.equal(la, lb) and torch.equal(ya, yb)
        torch.testing.assert_close(xa, xb)


def test_round_robin_alternates_tasks_and_restarts_at_any_step(small_store):
    sources = [
        TaskSource(str(small_store), StreamSpec(t, batch_size=4, window=12, seed=1)) for t in ("acted", "arousal")
    ]
    ref = [next(it) for it in [iter(RoundRobinBatches(sources))] for _ in range(9)]
    assert [k for k, *_ in ref] == [0, 1] * 4 + [0]
    later = iter(RoundRobinBatches(sources, start_step=5))
    for want in ref[5:]:
        got = next(later)
        assert got[0] == want[0] and all(torch.equal(a, b) for a, b in zip(got[1:], want[1:], strict=True))


@pytest.mark.slow
def test_loader_workers_split_steps_and_slices_and_resume(small_store):
    sources = [TaskSource(str(small_store), StreamSpec("valence", batch_size=2, window=12, seed=2))]
    ds = RoundRobinBatches(sources)
    # step t comes from worker t % 2, which reads data slice t % 2 of 2 (disjoint shards)
    w0, w1 = ds.worker_iter(0, 2), ds.worker_iter(1, 2)
    ref = [next(w0 if t % 2 == 0 else w1) for t in range(8)]
    labels = [set(y.tolist()) for _, _, _, y in ref]
    assert all(labels), "every step has a batch"
    # a real DataLoader with 2 worker processes, started at step 3 (a resume), continues exactly
    it = make_loader(RoundRobinBatches(sources, start_step=3), workers=2)
    for want in ref[3:]:
        got = next(it)
        assert all(torch.equal(a, b) for a, b in zip(got[1:], want[1:], strict=True))
    del it


def test_unknown_task_and_missing_partition_are_one_line_errors(small_store):
    from emonet.errors import StoreError, UnknownTaskError

    with pytest.raises(UnknownTaskError, match="it has: acted, arousal, valence"):
        next(batches(small_store, "nope"))
    with pytest.raises(StoreError, match="no 'holdout' partition"):
        next(batches(small_store, "acted", partition="holdout"))


def test_the_frame_cache_keeps_two_normalisations_of_a_partition_apart(small_store):
    from emonet.data.crops import Normalized, Normalizer
    from emonet.data.store_access import open_partition, read_frames_cached

    store = emonet.open_store(small_store)
    part = open_partition(store, "acted", "train")
    mean, std = store.normalization("acted")
    plain = read_frames_cached(part, 0, 10, Normalized(Normalizer(mean, std)))
    shifted = read_frames_cached(part, 0, 10, Normalized(Normalizer(mean + 1.0, std)))
    assert torch.allclose(plain - shifted, torch.ones_like(plain) / torch.as_tensor(std), atol=1e-5)
    again = read_frames_cached(part, 0, 10, Normalized(Normalizer(mean, std)))
    assert torch.equal(plain, again)
