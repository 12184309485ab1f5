"""Partition.prefetch asks the OS to read ahead exactly the block files a frame range lies in
(not the held ones), never fails on a file that is missing (the read reports it), and the
trainer's stream prefetches only what its frame cache lacks."""

from __future__ import annotations

import os

import numpy as np
import pytest

from emonet.data import store_access
from emonet.errors import StoreCorruptError
from emonet.store import open_store
from emonet.training import batches


@pytest.fixture
def advised(monkeypatch):
    """The files posix_fadvise(WILLNEED) is called on (the real call still runs)."""
    seen, real = [], os.posix_fadvise

    def record(fd, offset, length, advice):
        if advice == os.POSIX_FADV_WILLNEED:
            seen.append(os.path.realpath(os.readlink(f"/proc/self/fd/{fd}")))
        return real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", record)
    return seen


def _blocks_of(part, lo, hi):
    b = part.block_bounds
    return [k for k in range(len(b) - 1) if b[k] < hi and b[k + 1] > lo]


def test_prefetch_advises_the_range_blocks_not_held_ones(small_store, advised):
    part = open_store(small_store).partition("t", "train")
    assert part.n_blocks >= 3
    b = part.block_bounds
    lo, hi = int(b[1]) - 5, int(b[2]) + 5  # the end of block 0, all of 1, the start of 2
    part.prefetch(lo, hi)
    assert advised == [os.path.realpath(part._reader.block_path(k)) for k in _blocks_of(part, lo, hi)]
    advised.clear()
    part.read_frames(lo, hi)  # blocks 0-2 now held (the last HELD_BLOCKS of them)
    part.prefetch(lo, hi)
    held = set(part._held)
    assert held and advised == [
        os.path.realpath(part._reader.block_path(k)) for k in _blocks_of(part, lo, hi) if k not in held
    ]
    advised.clear()
    part.prefetch(hi, hi)  # an empty range: nothing
    assert advised == []


def test_prefetch_of_a_missing_block_is_silent_and_the_read_reports_it(small_store):
    part = open_store(small_store).partition("t", "train")
    part._reader.block_path(1).unlink()
    b = part.block_bounds
    part.prefetch(0, int(b[-1]))  # no error here
    with pytest.raises(StoreCorruptError, match="block 1"):
        part.read_frames(int(b[1]), int(b[2]))


def test_stream_prefetches_what_the_frame_cache_lacks(small_store, advised, monkeypatch):
    monkeypatch.setattr(store_access, "CACHE", store_access.FrameCache(64 * 2**20))
    part = open_store(small_store).partition("t", "train")
    first = [x.numpy() for x, _, _ in batches(small_store, "t", batch_size=2, window=0.2, seed=0, epoch=0)]
    n_files = len({str(p) for p in (part._reader.block_path(k) for k in range(part.n_blocks))})
    assert 0 < len(set(advised)) <= n_files
    advised.clear()
    again = [x.numpy() for x, _, _ in batches(small_store, "t", batch_size=2, window=0.2, seed=0, epoch=0)]
    assert advised == []  # every piece cached: no file advised
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
