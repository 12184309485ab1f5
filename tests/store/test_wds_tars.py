"""The webdataset store's tars: its own ustar parser reads exactly what webdataset's reader
reads from every tar it writes, and a tar repacked in another form (pax or GNU headers)
is read to the same frames (through webdataset's reader where it is not plain ustar); an unreadable one is a one-line
StoreCorruptError."""

import io
import tarfile

import numpy as np
import pytest
from webdataset.tariterators import tar_file_iterator

from emonet.data.partitions import single_task_sources
from emonet.errors import StoreCorruptError
from emonet.extraction.runner import ExtractOptions, run_extract
from emonet.store import open_store, wds_backend
from tests.helpers import make_task


@pytest.fixture
def wds_store(tmp_path):
    data, csvs = make_task(tmp_path, name="t", n_per_class=3, partitions=("train", "devel"))
    store = tmp_path / "store"
    sources = [single_task_sources("t", csvs["train"], csvs["devel"], None)]
    opts = ExtractOptions(store, data, sources, backend="webdataset", workers=1, frames_per_shard=32)
    run_extract(opts, notify=lambda m: None)
    return store


def _tars(store):
    for name in ("train", "devel"):
        part = open_store(store).partition("t", name)
        for k in range(part.n_blocks):
            yield part._reader.block_path(k)


# how a tar is repacked -> whether the fallback reader (webdataset's) reads it
FORMS = {"pax": True, "pax-global": True, "gnu": False}


def _repack(blob: bytes, form: str) -> bytes:
    """The tar ``blob`` written again by :mod:`tarfile`: with a pax header before each
    member (``pax``), one global pax header (``pax-global``) or in GNU format (magic
    ``ustar  ``, which the own parser reads)."""
    out = io.BytesIO()
    fmt = tarfile.GNU_FORMAT if form == "gnu" else tarfile.PAX_FORMAT
    glob = {"comment": "repacked"} if form == "pax-global" else None
    with (
        tarfile.open(fileobj=io.BytesIO(blob)) as src,
        tarfile.open(fileobj=out, mode="w", format=fmt, pax_headers=glob) as dst,
    ):
        for m in src:
            if form == "pax":
                m.pax_headers = {"comment": "repacked"}
            dst.addfile(m, src.extractfile(m))
    return out.getvalue()


def test_own_parser_reads_what_webdataset_reads(wds_store, monkeypatch):
    def no_fallback(blob):
        raise AssertionError("a tar this backend wrote went to the fallback reader")

    monkeypatch.setattr(wds_backend, "_webdataset_members", no_fallback)
    tars = list(_tars(wds_store))
    assert len(tars) > 4
    for path in tars:
        blob = path.read_bytes()
        theirs = [(s["fname"], s["data"]) for s in tar_file_iterator(io.BytesIO(blob))]
        assert wds_backend.tar_members(blob) == theirs and len(theirs) % 2 == 0


@pytest.mark.parametrize("form", FORMS)
def test_repacked_tars_read_the_same_frames(wds_store, monkeypatch, form):
    before = {n: [x for _, _, x in open_store(wds_store).partition("t", n)] for n in ("train", "devel")}
    for path in _tars(wds_store):
        path.write_bytes(_repack(path.read_bytes(), form))
    calls = []
    fallback = wds_backend._webdataset_members
    monkeypatch.setattr(wds_backend, "_webdataset_members", lambda blob: calls.append(1) or fallback(blob))
    store = open_store(wds_store, verify=False)  # the repacked files no longer match their CRCs
    for name, frames in before.items():
        after = [x for _, _, x in store.partition("t", name)]
        assert len(after) == len(frames) and all(np.array_equal(a, b) for a, b in zip(after, frames, strict=True))
    assert len(calls) == (len(list(_tars(wds_store))) if FORMS[form] else 0)


def test_unreadable_repacked_tar_is_a_one_line_store_error(wds_store):
    path = next(_tars(wds_store))
    blob = _repack(path.read_bytes(), "pax")
    path.write_bytes(blob[: len(blob) // 2])
    part = open_store(wds_store, verify=False).partition("t", "train")
    with pytest.raises(StoreCorruptError) as err:
        part.read_block(0)
    msg = str(err.value)
    assert "block 0: the block is unreadable (not a readable tar archive (" in msg, msg
    assert "\n" not in msg and " @ " not in msg and "--overwrite" in msg
