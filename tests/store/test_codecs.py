"""Stores written with another blosc setting (the zstd one before issue 20, lz4 at other
levels or shuffles) or none read bit-identically through the store's own shard decoder and
pass verify: the codec is in each chunk's blosc header (and the zarr array's metadata),
never assumed."""

import numpy as np
import pytest
from numcodecs import Blosc

from emonet.data.partitions import single_task_sources
from emonet.extraction.runner import ExtractOptions, run_extract
from emonet.store import codec, open_store, zarr_backend
from emonet.store.codec import CODECS, Codec
from emonet.store.verify import verify_store
from tests.helpers import make_task

OLD_ZSTD = Codec("zstd3-auto-blocks", "zstd", 3, "shuffle", 0)  # the default up to issue 20
SETTINGS = {
    c.name: c
    for c in (
        OLD_ZSTD,
        CODECS["zstd3"],
        CODECS["lz4"],
        Codec("lz4-5", "lz4", 5),
        Codec("lz4-bit", "lz4", 1, "bitshuffle"),
        CODECS["none"],
    )
}


def _extract(tmp_path, monkeypatch, backend: str, setting: Codec) -> object:
    monkeypatch.setitem(codec.CODECS, setting.name, setting)  # a setting --codec does not offer, written
    data, csvs = make_task(tmp_path, name="t", n_per_class=3, partitions=("train", "devel"))
    store = tmp_path / f"store-{backend}"
    opts = ExtractOptions(
        store=store,
        data_path=data,
        sources=[single_task_sources("t", csvs["train"], csvs["devel"], None)],
        backend=backend,
        workers=1,
        frames_per_shard=32,
        codec=setting.name,
    )
    run_extract(opts, notify=lambda m: None)
    monkeypatch.undo()  # reading must not depend on the writer's setting
    return store


def _items(store) -> dict:
    s = open_store(store)
    return {p: [(f, label, x) for f, label, x in s.partition("t", p)] for p in s.partitions("t")}


@pytest.mark.parametrize("backend", ["zarr", "webdataset"])
def test_stores_of_every_codec_read_the_same_frames_and_verify(tmp_path, monkeypatch, backend):
    reference = None
    for name, setting in SETTINGS.items():
        store = _extract(tmp_path / name, monkeypatch, backend, setting)
        assert verify_store(store).ok, name
        items = _items(store)
        if reference is None:
            reference = items
        assert items.keys() == reference.keys()
        for p in items:
            for (fa, la, xa), (fb, lb, xb) in zip(items[p], reference[p], strict=True):
                assert (fa, la) == (fb, lb) and xa.tobytes() == xb.tobytes(), (name, p, fa)
        if backend == "zarr":  # the store's own decoder, not zarr's, and zarr agrees
            part = open_store(store).partition("t", "train")
            reader = part._reader
            assert reader._plain_sharding and reader._blosc == (not setting.raw)
            assert np.array_equal(np.concatenate([x for _, _, x in part]), np.asarray(reader.features[:], np.float32))


def test_a_chunk_that_claims_another_size_is_refused(tmp_path, monkeypatch):
    """A blosc header whose size disagrees with the chunk's is damage, never a short chunk of zeros."""
    store = _extract(tmp_path, monkeypatch, "zarr", OLD_ZSTD)
    reader = open_store(store, verify=False).partition("t", "train")._reader
    blob = bytearray(reader.block_path(0).read_bytes())
    per_shard = reader.features.shards[0] // reader.features.chunks[0]
    off = int(np.frombuffer(bytes(blob), "<u8", 1, len(blob) - 4 - 16 * per_shard)[0])
    blob[off + 4 : off + 8] = (int.from_bytes(blob[off + 4 : off + 8], "little") - 2).to_bytes(4, "little")
    with pytest.raises(ValueError, match="does not decode to"):
        reader.read_block(0, bytes(blob))


@pytest.mark.parametrize("blosc", [True, False], ids=["blosc", "raw"])
def test_a_chunk_zarr_did_not_write_decodes_to_zeros(blosc):
    """The shard decoder fills its output chunk by chunk (no zeroing first): an unwritten
    chunk (index offset 2**64 - 1, all fill value) must still come out as zeros."""
    rows, mels = 4, 3
    chunk = np.arange(rows * mels, dtype=np.float16).reshape(rows, mels) + 1
    raw = chunk.tobytes()
    data = Blosc(cname="zstd", clevel=3, shuffle=Blosc.SHUFFLE).encode(raw) if blosc else raw
    index = np.array([2**64 - 1, 2**64 - 1, 0, len(data)], "<u8").tobytes()
    blob = data + index + b"\0\0\0\0"  # the CRC-32C of the index is not checked here
    out = zarr_backend.decode_shard(blob, 2 * rows, 2 * rows, rows, mels, 1, 2 * rows, blosc)
    np.testing.assert_array_equal(out, np.concatenate([np.zeros((rows - 1, mels), np.float16), chunk]))
