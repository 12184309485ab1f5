"""`emonet extract --codec` end to end (issue 20): the same corpus extracted with every
named setting decodes to the same frames, the store records the setting that wrote it
(and its bytes show it), sizes follow the settings, and a store refuses a run that asks
another codec than the one it was written with."""

import json
import pickle
import tarfile

import pytest
import yaml
import zarr
from numcodecs import blosc

from emonet.cli.app import main
from emonet.errors import ConfigError
from emonet.extraction.options import ExtractOptions
from emonet.store import open_store
from emonet.store.backends import get_backend
from emonet.store.codec import CODECS, DEFAULT, get_codec
from emonet.store.metadata import CONFIG_YAML
from tests.helpers import make_task

BACKENDS = ["zarr", "webdataset"]
BLOSC_NAME = {"zstd3": "zstd", "lz4": "lz4"}  # the compressor each setting's blosc frames name


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("codec-corpus")
    return make_task(root, name="t", n_per_class=3, seconds=1.0, partitions=("train", "devel"))


def extract(store, corpus, *args, task="t", workers=1) -> int:
    data, csvs = corpus
    argv = ["extract", "-s", store, "-dp", data, "--task", task, "-tr", csvs["train"], "-v", csvs["devel"]]
    return main([*map(str, argv), "--frames-per-shard", "64", "-j", str(workers), "-q", *args])


@pytest.fixture(scope="module", params=BACKENDS)
def stores(request, corpus, tmp_path_factory):
    """backend, {codec: store} with the corpus extracted once per codec (the default without
    --codec; lz4 by two worker processes, which get the setting with their blocks)."""
    root = tmp_path_factory.mktemp(f"codec-stores-{request.param}")
    out = {}
    for name in CODECS:
        out[name] = root / name
        args = ["-f", request.param, *([] if name == DEFAULT else ["--codec", name])]
        assert extract(out[name], corpus, *args, workers=2 if name == "lz4" else 1) == 0
    return request.param, out


def _frames(store) -> dict:
    s = open_store(store)
    return {p: [(f, label, x.tobytes()) for f, label, x in s.partition("t", p)] for p in s.partitions("t")}


def _frame_bytes(store, backend) -> int:
    """Bytes of the compressed frames: zarr, the shard files; webdataset, the samples' frames
    in the tars (each tar member is padded to 512 bytes, which hides a small corpus' sizes)."""
    s = open_store(store)
    if backend == "zarr":
        return sum(s.partition("t", p).nbytes_on_disk() for p in s.partitions("t"))
    total = 0
    for tar in store.glob("t/*/shard-*.tar"):
        with tarfile.open(tar) as tf:
            total += sum(m.size for m in tf.getmembers() if m.name.endswith(".logmel.blosc"))
    return total


def _blosc_names(store, backend) -> set:
    """The compressor named by the blosc frames of the train partition's blocks ({"raw"}: none)."""
    part = store / "t" / "train"
    if backend == "zarr":
        inner = zarr.open_array(str(part / "features"), mode="r").metadata.to_dict()["codecs"][0]["configuration"]
        if [c["name"] for c in inner["codecs"]] == ["bytes"]:
            return {"raw"}
        return {c["configuration"]["cname"] for c in inner["codecs"] if c["name"] == "blosc"}
    names = set()
    for tar in sorted(part.glob("shard-*.tar")):
        with tarfile.open(tar) as tf:
            for member in tf.getmembers():
                if member.name.endswith(".logmel.blosc"):
                    frame = tf.extractfile(member).read()
                    names.add("raw" if frame[2] & 0x2 else blosc.cbuffer_complib(frame).lower())  # 0x2: memcpyed
    return names


def test_every_codec_decodes_to_the_same_frames(stores):
    backend, by_codec = stores
    reference = _frames(by_codec[DEFAULT])
    for name, store in by_codec.items():
        assert _frames(store) == reference, name


def test_the_store_records_the_codec_that_wrote_it(stores, capsys):
    backend, by_codec = stores
    for name, store in by_codec.items():
        s = open_store(store)
        assert s.meta["codec"] == name and yaml.safe_load((store / CONFIG_YAML).read_text())["codec"] == name
        assert all(s.partition("t", p).meta["codec"] == name for p in s.partitions("t"))
        assert _blosc_names(store, backend) == {BLOSC_NAME.get(name, "raw")}, name
        assert main(["info", str(store), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["codec"] == name
        assert main(["info", str(store)]) == 0
        assert f"codec {name}" in " ".join(capsys.readouterr().out.split())


def test_sizes_follow_the_codecs(stores):
    backend, by_codec = stores
    sizes = {name: _frame_bytes(store, backend) for name, store in by_codec.items()}
    assert sizes["none"] > sizes["lz4"] > sizes["zstd3"], sizes


def test_the_layouts_carry_the_setting_to_the_workers():
    for backend in BACKENDS:
        layout = get_backend(backend).layout(64, get_codec("lz4"))
        assert pickle.loads(pickle.dumps(layout)) == layout and layout.codec == CODECS["lz4"]
        assert layout.key() != get_backend(backend).layout(64).key()  # staged blocks of another codec restart


def test_an_unknown_codec_is_one_line_naming_the_option_and_the_choices(tmp_path, corpus, capsys):
    assert extract(tmp_path / "s", corpus, "--codec", "zstd") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--codec" in err and "'zstd'" in err, err
    assert all(f"'{name}'" in err for name in CODECS) and "Traceback" not in err, err
    assert not (tmp_path / "s").exists()
    data, csvs = corpus
    with pytest.raises(ConfigError, match=r"unknown --codec 'zstd'; choose one of: zstd3, lz4, none"):
        ExtractOptions(store=tmp_path / "s", data_path=data, sources=[], codec="zstd")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("first", "then"), [("lz4", DEFAULT), (DEFAULT, "none"), ("unrecorded", "lz4")])
def test_a_store_refuses_another_codec_until_overwrite(tmp_path, corpus, capsys, backend, first, then):
    """Adding a task, or re-running, with another --codec than the store's is refused in one
    line naming both and the fixes; --overwrite re-extracts everything with the new one. A
    store written before --codec existed records none: it was written with the default."""
    store = tmp_path / "s"
    written = DEFAULT if first == "unrecorded" else first
    assert extract(store, corpus, "-f", backend, "--codec", written) == 0
    if first == "unrecorded":
        _forget_codec(store, backend)
    capsys.readouterr()
    for task in ("t", "u"):  # a re-run (resume) of the same task, and a task added
        assert extract(store, corpus, "-f", backend, "--codec", then, task=task) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"--codec {written}, but --codec {then} was asked" in err, err
        assert f"pass --codec {written}, another --store, or --overwrite" in err, err
    assert open_store(store).tasks == ["t"]
    assert extract(store, corpus, "-f", backend, "--codec", written, task="u") == 0  # the store's codec: added
    assert extract(store, corpus, "-f", backend, "--codec", then, "--overwrite") == 0
    s = open_store(store)
    assert s.tasks == ["t"] and s.meta["codec"] == then and s.partition("t", "train").meta["codec"] == then
    assert _blosc_names(store, backend) == {BLOSC_NAME.get(then, "raw")}


def _forget_codec(store, backend) -> None:
    """The store as an emonet before --codec wrote it: no codec in its records."""
    b = get_backend(backend)
    meta = b.read_meta(store, "store")
    del meta["codec"]
    b.write_meta(store, "store", meta)
    for part in ("train", "devel"):
        meta = b.read_meta(store / "t" / part, "partition")
        del meta["codec"]
        b.write_meta(store / "t" / part, "partition", meta)
    assert "codec" not in open_store(store).meta
