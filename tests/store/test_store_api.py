"""The read API: checked and unchecked reads agree, unknown names are UnknownTaskErrors
(still KeyErrors for old callers), and the zarr shard decoder matches zarr."""

import numpy as np
import pytest

from emonet.errors import UnknownTaskError
from emonet.store import open_store
from emonet.store.content import PartitionContent
from emonet.store.staging import StagedPartition
from emonet.store.zarr_backend import Reader, ZarrLayout


def test_checked_and_unchecked_reads_agree(small_store):
    checked, unchecked = open_store(small_store), open_store(small_store, verify=False)
    for part in checked.partitions("t"):
        a, b = checked.partition("t", part), unchecked.partition("t", part)
        assert a.n_blocks > 1 and a.files == b.files
        for (fa, la, xa), (fb, lb, xb) in zip(a, b, strict=True):
            assert (fa, la) == (fb, lb) and np.array_equal(xa, xb)
        for i in range(len(a)):  # random access too
            assert np.array_equal(a[i][2], b[i][2])


def test_read_frames_spans_utterances_and_blocks_and_refuses_ranges_outside(small_store):
    """The public checked frame-range read the data path uses: any run of utterances, across
    block edges, equals their items one after the other; a range outside the partition is an
    IndexError naming it, an empty range no frames."""
    part = open_store(small_store).partition("t", "train")
    whole = np.concatenate([x for _, _, x in part])
    total = int(part.offsets[-1])
    edge = int(part.block_bounds[1])
    for lo, hi in ((0, total), (edge - 3, edge + 5), (int(part.offsets[2]), int(part.offsets[4]))):
        got = part.read_frames(lo, hi)
        assert got.dtype == np.float16 and np.array_equal(got.astype(np.float32), whole[lo:hi])
    assert part.read_frames(5, 5).shape == (0, whole.shape[1])
    for lo, hi in ((-1, 4), (total - 2, total + 1)):
        with pytest.raises(IndexError, match=r"frames .* are outside partition t/train"):
            part.read_frames(lo, hi)


def test_unknown_task_and_partition_are_unknown_task_errors(small_store):
    s = open_store(small_store)
    with pytest.raises(UnknownTaskError, match="it has: t"):
        s.partition("nope", "train")
    with pytest.raises(KeyError):  # callers that catch KeyError keep working
        s.classes("nope")
    with pytest.raises(UnknownTaskError, match="it has: train, devel"):
        s.partition("t", "test")
    with pytest.raises(UnknownTaskError):
        s.partition("t", "../t")


def test_shard_decoder_matches_zarr_with_several_chunks_per_shard(tmp_path):
    rng = np.random.default_rng(0)
    frames = [37, 50, 11, 90, 23]
    content = PartitionContent(
        "t", "train", [f"f{i}" for i in range(5)], [0] * 5, frames, [1.0] * 5, n_mels=8, paths=["x"] * 5
    )
    layout = ZarrLayout(frames_per_shard=64, frames_per_chunk=16)
    staged = StagedPartition(tmp_path / "p", content, layout, ["a"])
    data = rng.normal(size=(content.total_frames, 8)).astype(np.float16)
    for k in staged.prepare():
        lo, hi = int(staged.bounds[k]), int(staged.bounds[k + 1])
        layout.write_block(staged.dir, k, lo, data[lo:hi], [])
    reader = Reader(staged.dir)
    assert reader._plain_sharding and len(reader.block_bounds) - 1 == 4
    for k in range(4):
        lo, hi = int(reader.block_bounds[k]), int(reader.block_bounds[k + 1])
        blob = reader.block_path(k).read_bytes()
        fast = reader.read_block(k, blob)
        assert np.array_equal(fast, np.asarray(reader.features[lo:hi])) and np.array_equal(fast, data[lo:hi])
        assert np.array_equal(reader._decode_with_zarr(k, blob), data[lo:hi])  # the decoder for other layouts
        for a, z in ((0, 1), (15, 17), (16, min(32, hi - lo)), (5, hi - lo)):  # parts: only the chunks they lie in
            assert np.array_equal(reader.decode(k, blob, a, z), data[lo + a : lo + z])
