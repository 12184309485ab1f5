"""Every read of a block's file checks it, not only the first: a block deleted, flipped,
truncated or replaced after an earlier good read is a StoreCorruptError on the next read,
through every read path (iteration, item access, the trainer's frame reads with its cache
off, evaluation's scoring), for both formats. Frames already read and checked may be served
again from memory (the trainer's frame cache), never damaged ones."""

import os
import shutil

import numpy as np
import pytest

from emonet.data import store_access
from emonet.data.crops import Normalizer
from emonet.data.partitions import single_task_sources
from emonet.errors import StoreCorruptError
from emonet.extraction.runner import ExtractOptions, run_extract
from emonet.store import open_store
from tests.helpers import make_task

pytestmark = pytest.mark.slow  # 54 damage cases on both backends

DAMAGE = ["delete", "flip", "truncate", "other-partition"]


def _block_file(part, k):
    return part._reader.block_path(k)


def _damage(part, k, how, store):
    path = _block_file(part, k)
    if how == "delete":
        path.unlink()
    elif how == "flip":
        blob = bytearray(path.read_bytes())
        blob[len(blob) // 2] ^= 0x01
        path.write_bytes(bytes(blob))
    elif how == "truncate":
        path.write_bytes(path.read_bytes()[:-100])
    else:  # a block file of another partition put in its place
        other = _block_file(open_store(store).partition("t", "devel"), 0)
        shutil.copyfile(other, path)


def _frames_in_block(part, k):
    """(lo, hi) frame range of the utterances that start in block k (what the trainer reads)."""
    b, off = part.block_bounds, part.offsets
    ids = np.flatnonzero((off[:-1] >= b[k]) & (off[:-1] < b[k + 1]))
    return int(off[ids[0]]), int(off[ids[-1] + 1])


def _scored(part):
    from emonet.data.batching import utterance_batches

    index = store_access.partition_index(part)
    norm = Normalizer(np.zeros(part._reader_n_mels, np.float32), np.ones(part._reader_n_mels, np.float32))
    return [x.numpy() for _, x, _ in utterance_batches(part, index, norm, batch_size=4)]


READS = {
    "iteration": lambda part, k: [x for _, _, x in part],
    "item": lambda part, k: part[int(np.searchsorted(part.offsets, part.block_bounds[k], side="right")) - 1][2],
    "read_block": lambda part, k: part.read_block(k),
    "trainer": lambda part, k: store_access.read_frames_cached(part, *_frames_in_block(part, k)),
    "scoring": lambda part, k: _scored(part),
}


@pytest.fixture
def no_frame_cache(monkeypatch):
    monkeypatch.setattr(store_access.CACHE, "budget", 0)
    store_access.CACHE._data.clear()
    store_access.CACHE.used = 0


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("path", list(READS))
def test_a_block_damaged_after_a_good_read_fails_the_next_read(small_store, no_frame_cache, path, how):
    part = open_store(small_store).partition("t", "train")
    part._reader_n_mels = int(part.meta["n_mels"])
    read = READS[path]
    read(part, 1)  # a good read: the block is checked and its bytes held
    read(part, 1)  # and again
    _damage(part, 1, how, small_store)
    with pytest.raises(StoreCorruptError, match=r"t/train\): block 1 .*(missing|fails its checksum)"):
        read(part, 1)


@pytest.mark.parametrize("verify", [True, False])
def test_a_missing_block_is_never_zeros_even_unchecked(small_store, no_frame_cache, verify):
    part = open_store(small_store, verify=verify).partition("t", "train")
    lo, hi = _frames_in_block(part, 1)
    assert np.abs(store_access.read_frames(part, lo, hi)).sum() > 0
    _block_file(part, 1).unlink()
    with pytest.raises(StoreCorruptError, match="block 1 is missing"):
        store_access.read_frames(part, lo, hi)


def test_training_batches_with_the_cache_off_fail_once_a_shard_is_gone(small_store, no_frame_cache):
    from emonet.training import batches

    first = [x for x, _, _ in batches(small_store, "t", batch_size=2, window=0.2, epoch=0)]
    assert len(first) > 1
    _block_file(open_store(small_store).partition("t", "train"), 2).unlink()
    with pytest.raises(StoreCorruptError, match=r"block 2 is missing|missing \(block 2"):
        for _ in batches(small_store, "t", batch_size=2, window=0.2, epoch=1):
            pass


def test_training_batches_with_the_cache_on_reuse_checked_frames(small_store, monkeypatch):
    """The frame cache holds frames read and checked before the damage: the same epoch
    gives the same batches; a fresh process (empty cache) fails."""
    from emonet.training import batches

    monkeypatch.setattr(store_access, "CACHE", store_access.FrameCache(2**30))
    first = [x for x, _, _ in batches(small_store, "t", batch_size=2, window=0.2, epoch=0)]
    _damage(open_store(small_store).partition("t", "train"), 2, "flip", small_store)
    again = [x for x, _, _ in batches(small_store, "t", batch_size=2, window=0.2, epoch=0)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    monkeypatch.setattr(store_access, "CACHE", store_access.FrameCache(0))
    with pytest.raises(StoreCorruptError, match="block 2 .*fails its checksum"):
        list(batches(small_store, "t", batch_size=2, window=0.2, epoch=0))


def test_held_bytes_are_reused_only_while_the_file_is_unchanged(small_store):
    """A flip that keeps the file's size and modification time (bit rot) is not re-read by
    an open partition: it serves the bytes it checked, so the frames are the true ones; a
    fresh open reads the file and fails."""
    part = open_store(small_store).partition("t", "train")
    lo, hi = _frames_in_block(part, 1)
    clean = store_access.read_frames(part, lo, hi).copy()
    path = _block_file(part, 1)
    st = os.stat(path)
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    with open(path, "r+b") as fh:  # in place: same inode and size
        fh.write(bytes(blob))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert np.array_equal(store_access.read_frames(part, lo, hi), clean)
    with pytest.raises(StoreCorruptError, match="block 1 .*fails its checksum"):
        store_access.read_frames(open_store(small_store).partition("t", "train"), lo, hi)


def test_index_changed_under_an_open_reader(small_store):
    """The open partition keeps the index it checked when it opened: its reads stay right;
    a new open sees the changed index and refuses it."""
    train, devel = small_store / "t" / "train", small_store / "t" / "devel"
    part = open_store(small_store).partition("t", "train")
    clean = [x.copy() for _, _, x in part]
    if (train / "index.npz").exists():  # webdataset
        shutil.copyfile(devel / "index.npz", train / "index.npz")
    else:  # zarr: the file names of another partition
        shutil.copyfile(devel / "files" / "c" / "0", train / "files" / "c" / "0")
    assert all(np.array_equal(a, x) for a, (_, _, x) in zip(clean, part, strict=True))
    with pytest.raises(StoreCorruptError, match="t/train.*index"):
        open_store(small_store).partition("t", "train")


def test_partition_replaced_under_an_open_reader_is_an_error_not_its_frames(small_store, tmp_path, no_frame_cache):
    """Another extraction's partition (other audio) put in place of an open one: its blocks
    fail the open partition's checksums (or are missing); none of its frames come back."""
    part = open_store(small_store).partition("t", "train")
    [x for _, _, x in part]
    data, csvs = make_task(tmp_path / "other", name="t", n_per_class=4, seconds=0.9, partitions=("train",))
    other = tmp_path / "other-store"
    opts = ExtractOptions(
        store=other,
        data_path=data,
        sources=[single_task_sources("t", csvs["train"], None, None)],
        backend=open_store(small_store).backend,
        workers=1,
        frames_per_shard=32,
    )
    run_extract(opts, notify=lambda m: None)
    train = small_store / "t" / "train"
    shutil.rmtree(train)
    shutil.copytree(other / "t" / "train", train)
    for k in range(part.n_blocks):
        with pytest.raises(StoreCorruptError, match=rf"block {k} .*(missing|fails its checksum)"):
            part.read_block(k)
