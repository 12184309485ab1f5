"""Hostile input: non-finite audio, --overwrite that announces and keeps foreign files,
normalised duplicate paths, one-line errors instead of tracebacks, capped workers, and
no half-made task after a file fails while decoding."""

import errno
import json
import os
import wave

import numpy as np
import pytest
import soundfile as sf

from emonet.cli.app import main
from emonet.data.features import FeatureConfig
from emonet.data.partitions import read_partition_csv, single_task_sources
from emonet.errors import ConfigError, StoreCorruptError, StoreError
from emonet.extraction.blocks import BlockExecutor, BlockFailure, run_block
from emonet.extraction.options import ExtractOptions
from emonet.extraction.runner import run_extract
from emonet.store import open_store
from emonet.store.staging import BlockItem, BlockJob
from emonet.store.zarr_backend import ZarrLayout
from tests.helpers import make_task, tree_digest, write_csv

pytestmark = pytest.mark.slow  # damaged stores, signals and re-extraction


def extract(*args) -> int:
    return main(["extract", *map(str, args), "-q"])


def _nan_wav(path):
    x = (0.1 * np.sin(np.arange(8000) / 10)).astype(np.float32)
    x[4000] = np.nan
    sf.write(str(path), x, 16000, subtype="FLOAT")


def test_non_finite_audio_is_a_bad_file_and_leaves_no_half_made_task(tmp_path, capsys):
    data, csvs = make_task(tmp_path, partitions=("train", "devel"))
    store = tmp_path / "s"
    _nan_wav(data / "t" / "train_a_1.wav")  # the header is fine: it fails while decoding
    assert extract("-s", store, "-dp", data, "-t", "t", "-tr", csvs["train"], "-v", csvs["devel"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "non-finite samples" in err and "row 3" in err, err
    assert open_store(store).tasks == []  # no task appears without a complete partition
    assert extract("-s", store, "-dp", data, "-t", "t", "-tr", csvs["train"], "-v", csvs["devel"], "--skip-bad") == 0
    out = capsys.readouterr().out
    assert "skipped 1 bad row(s)" in out and "non-finite" in out
    s = open_store(store)
    train = s.partition("t", "train")
    assert len(train) == 7 and "t/train_a_1.wav" not in train.files
    assert train.meta["skipped"][0]["row"] == 3
    mean, std = s.normalization("t")
    assert np.isfinite(mean).all() and np.isfinite(std).all()


def test_overwrite_announces_what_it_removes_and_keeps_foreign_files(tmp_path, capsys):
    data, csvs = make_task(tmp_path, partitions=("train", "devel"))
    store = tmp_path / "s"
    assert extract("-s", store, "-dp", data, "-t", "t", "-tr", csvs["train"], "-v", csvs["devel"]) == 0
    (store / "notes.txt").write_text("mine")
    (store / "t" / "mine.txt").write_text("mine too")
    capsys.readouterr()
    assert extract("-s", store, "-dp", data, "-t", "t", "-tr", csvs["train"], "-nm", 64, "--overwrite") == 0
    err = capsys.readouterr().err
    assert f"removing {store / 't'} (train, devel)" in err and "another format, codec or feature config" in err
    assert (store / "notes.txt").read_text() == "mine" and (store / "t" / "mine.txt").read_text() == "mine too"
    assert "kept 1 file(s)" in err and "mine.txt" in err
    assert open_store(store).partitions("t") == ["train"]
    # a train csv whose classes changed removes the task's other partitions, and says so
    assert extract("-s", store, "-dp", data, "-t", "t", "-tr", csvs["train"], "-v", csvs["devel"], "-nm", 64) == 0
    rows = [ln.replace(",b", ",c") for ln in csvs["train"].read_text().splitlines()]
    write_csv(csvs["train"], rows[1:])
    capsys.readouterr()
    assert extract("-s", store, "-dp", data, "-t", "t", "-tr", csvs["train"], "-nm", 64, "--overwrite") == 0
    err = capsys.readouterr().err
    assert "(train, devel)" in err and "classes ['a', 'b'] -> ['a', 'c']" in err
    assert open_store(store).classes("t") == ["a", "c"] and (store / "notes.txt").exists()


def test_duplicates_compare_normalised_paths_and_overlap_is_a_warning(tmp_path, capsys):
    data, csvs = make_task(tmp_path, partitions=("train", "test"))
    lines = csvs["train"].read_text().splitlines()
    key, label = lines[1].split(",")
    dupes = [key.replace("/", "/./") + "," + label, key.replace("/", "//") + "," + label]
    csvs["train"].write_text("\n".join(lines + dupes) + "\n")
    pc = read_partition_csv(csvs["train"], "train")
    assert [str(e).split(": ", 1)[1] for e in pc.problems] == [
        f"'{dupes[0].split(',')[0]}' duplicates row 2; delete one of the two rows",
        f"'{dupes[1].split(',')[0]}' duplicates row 2; delete one of the two rows",
    ]
    test_lines = csvs["test"].read_text().splitlines()
    csvs["test"].write_text("\n".join(test_lines + [lines[2]]) + "\n")  # a train file, also in test
    write_csv(csvs["train"], lines[1:])
    assert extract("-s", tmp_path / "s", "-dp", data, "-t", "t", "-tr", csvs["train"], "-te", csvs["test"]) == 0
    err = capsys.readouterr().err
    assert "warning: task 't': 1 file(s) are in both train and test" in err


def test_csv_with_cr_only_line_endings_is_read(tmp_path):
    data, csvs = make_task(tmp_path, partitions=("train",))
    text = csvs["train"].read_text()
    csvs["train"].write_bytes(text.replace("\n", "\r").encode())
    pc = read_partition_csv(csvs["train"], "train")
    assert len(pc.rows) == 8 and not pc.problems and pc.rows[0].line == 2


def test_unknown_device_and_empty_mel_bands_are_config_errors(tmp_path):
    data, csvs = make_task(tmp_path, partitions=("train",))
    src = [single_task_sources("t", csvs["train"], None, None)]
    with pytest.raises(ConfigError, match="--device 'tpu' is not a device; use one of 'auto', 'cpu', 'cuda', 'cuda:N'"):
        run_extract(ExtractOptions(store=tmp_path / "s", data_path=data, sources=src, device="tpu"))
    with pytest.raises(ConfigError, match="mel bands get no FFT bin"):
        FeatureConfig(n_mels=2000)
    assert not (tmp_path / "s").exists()


def test_absurd_sample_rate_in_a_header_is_a_bad_row(tmp_path, capsys):
    data, csvs = make_task(tmp_path, partitions=("train",))
    key = csvs["train"].read_text().splitlines()[4].split(",")[0]
    with wave.open(str(data / key), "wb") as w:  # a header that claims 1 Hz
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(1)
        w.writeframes(np.zeros(16000, "<i2").tobytes())
    assert extract("-s", tmp_path / "s", "-dp", data, "-t", "t", "-tr", csvs["train"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "row 5" in err and "implausible sample rate 1 Hz" in err, err


def test_non_finite_statistics_and_empty_train_are_refused(tmp_path, capsys):
    data, csvs = make_task(tmp_path, partitions=("train",))
    store = tmp_path / "s"
    assert extract("-s", store, "-dp", data, "-t", "t", "-tr", csvs["train"]) == 0
    meta_file = store / "t" / "train" / "zarr.json"
    doc = json.loads(meta_file.read_text())
    doc["attributes"]["emonet"]["mel_mean"][3] = float("nan")
    meta_file.write_text(json.dumps(doc))
    with pytest.raises(StoreCorruptError, match="non-finite normalisation statistics"):
        open_store(store).normalization("t")
    doc["attributes"]["emonet"]["files"] = 0
    meta_file.write_text(json.dumps(doc))
    with pytest.raises(StoreError, match="empty train partition"):
        open_store(store).normalization("t")
    # and extraction refuses to make a task whose train rows were all skipped
    for line in csvs["train"].read_text().splitlines()[1:]:
        (data / line.split(",")[0]).write_bytes(b"not audio")
    assert extract("-s", tmp_path / "s2", "-dp", data, "-t", "t", "-tr", csvs["train"], "--skip-bad") == 2
    assert "none of its 8 row(s) is usable" in capsys.readouterr().err


def test_out_of_memory_is_named_as_such(tmp_path):
    def features():
        raise MemoryError()
        yield  # a generator

    lay = ZarrLayout(frames_per_shard=32, frames_per_chunk=32)
    job = BlockJob(tmp_path, lay, 0, 0, 10, (BlockItem(0, "x.wav", 0, 10, {}),), 4)
    res = run_block(job, features())
    assert isinstance(res, BlockFailure) and res.kind == "memory" and "out of memory" in res.reason


def test_workers_are_capped_at_cpus_and_blocks(tmp_path):
    data, csvs = make_task(tmp_path, partitions=("train",))
    opts = ExtractOptions(
        store=tmp_path / "s",
        data_path=data,
        sources=[single_task_sources("t", csvs["train"], None, None)],
        workers=1000,
    )
    assert opts.workers == (os.cpu_count() or 1)
    ex = BlockExecutor(FeatureConfig(), workers=1000)
    ex.limit(1)
    assert ex.workers == 1 and not ex.parallel
    report = run_extract(opts, notify=lambda m: None)
    assert [r.status for r in report.results] == ["extracted"]


def test_a_full_disk_leaves_no_temporary_files(tmp_path, monkeypatch, capsys):
    data, csvs = make_task(tmp_path, partitions=("train", "devel"))
    store = tmp_path / "s"
    calls = {"n": 0}
    real_fsync = os.fsync

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] > 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    args = ["-s", store, "-dp", data, "-t", "t", "-tr", csvs["train"], "-v", csvs["devel"], "--frames-per-shard", 32]
    assert extract(*args, "--workers", 1) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no space left on the device" in err, err
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert extract(*args, "--workers", 1) == 0
    assert not [p for p in tree_digest(store, exclude=()) if ".tmp-" in p]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_says_permission_denied(tmp_path, capsys):
    data, csvs = make_task(tmp_path, partitions=("train",))
    key = csvs["train"].read_text().splitlines()[1].split(",")[0]
    os.chmod(data / key, 0)
    assert extract("-s", tmp_path / "s", "-dp", data, "-t", "t", "-tr", csvs["train"]) == 2
    assert "permission denied" in capsys.readouterr().err


def _damage(store, how):
    part = store / "t" / "train"
    wds = (part / "index.npz").exists()
    block = part / "shard-000001.tar" if wds else part / "features" / "c" / "1" / "0"
    if how == "flip":
        blob = bytearray(block.read_bytes())
        blob[len(blob) // 2] ^= 0x01
        block.write_bytes(bytes(blob))
    elif how == "delete":
        block.unlink()
    elif how == "truncate":
        block.write_bytes(block.read_bytes()[:-64])
    elif how == "index":
        target = part / "index.npz" if wds else part / "files" / "c" / "0"
        blob = bytearray(target.read_bytes())
        blob[200 if wds else len(blob) // 2] ^= 0x01
        target.write_bytes(bytes(blob))
    else:  # the partition's or the task's metadata record
        node = part if how == "meta" else part.parent
        meta = node / ("zarr.json" if not wds else "partition.json" if how == "meta" else "task.json")
        meta.write_text(meta.read_text()[:-20])


@pytest.mark.parametrize("fmt", ["zarr", "webdataset"])
@pytest.mark.parametrize("how", ["flip", "delete", "truncate", "index", "meta", "task-meta"])
@pytest.mark.slow
def test_following_the_damage_advice_repairs_the_store(tmp_path, capsys, fmt, how):
    """A damaged partition: `emonet verify` says to re-run the extract command with
    --overwrite; doing exactly that re-extracts the damaged partition (only it, announced)
    and the store verifies clean, byte-identical to before the damage."""
    data, csvs = make_task(tmp_path, partitions=("train", "devel"))
    store = tmp_path / "s"
    cmd = ["-s", store, "-dp", data, "-t", "t", "-tr", csvs["train"], "-v", csvs["devel"], "--format", fmt]
    cmd += ["--frames-per-shard", 32]
    assert extract(*cmd) == 0
    clean = tree_digest(store)
    devel_block = store / "t" / "devel" / ("shard-000000.tar" if fmt == "webdataset" else "features/c/0/0")
    devel_stamp = devel_block.stat().st_ino, devel_block.stat().st_mtime_ns
    _damage(store, how)
    capsys.readouterr()
    assert main(["verify", str(store)]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "re-run the 'emonet extract' command" in err and "--overwrite" in err
    # without --overwrite an up-to-date partition's blocks are not read again; its closing
    # summary still checks the records, the index and that every block file is there
    assert extract(*cmd) == (0 if how in ("flip", "truncate") else 3)
    assert extract(*cmd, "--overwrite") == 0
    err = capsys.readouterr().err
    if how == "task-meta":  # the record is rewritten; the partitions are intact
        assert "rewriting the record of task 't'" in err and "replacing" not in err
    else:
        assert f"replacing {store / 't' / 'train'}: damaged" in err and "devel" not in err
    assert main(["verify", str(store)]) == 0
    assert tree_digest(store) == clean
    assert (devel_block.stat().st_ino, devel_block.stat().st_mtime_ns) == devel_stamp  # intact: not rewritten
