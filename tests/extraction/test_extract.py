"""Extraction end to end through the CLI, checked through the store API."""

import json
import os

import numpy as np
import pytest
import torch

from emonet.cli.app import main
from emonet.data.audio import load_mono, resampled_length
from emonet.data.features import FeatureConfig, LogMel
from emonet.data.partitions import read_partition_csv
from emonet.store import open_store
from tests.helpers import DEMO_TASKS, make_task, tree_digest, write_csv, write_wav


def extract(*args) -> int:
    return main(["extract", *map(str, args), "-q"])


@pytest.mark.slow
def test_store_api_matches_direct_computation(demo_store, demo_corpus):
    store = open_store(demo_store)
    assert store.tasks == DEMO_TASKS
    fc = store.feature_config
    assert (fc["sample_rate"], fc["n_fft"], fc["hop_length"], fc["n_mels"], fc["f_min"], fc["f_max"]) == (
        16000,
        1024,
        512,
        128,
        20.0,
        8000.0,
    )
    assert store.classes("acted") == ["angry", "happy", "neutral", "sad"]
    assert store.partitions("acted") == ["train", "devel", "test"]
    lm = LogMel(FeatureConfig(dtype="float32"))
    for part, csv_name in (("train", "train.csv"), ("devel", "val.csv"), ("test", "test.csv")):
        p = store.partition("acted", part)
        rows = read_partition_csv(demo_corpus / "multi-task-setup" / "acted" / csv_name, part).rows
        assert len(p) == len(rows) and p.files == [r.file for r in rows]
        for i in (0, len(p) // 2, len(p) - 1):
            file, label, x = p[i]
            assert (file, label) == (rows[i].file, rows[i].label)
            ref = lm(load_mono(demo_corpus / "data" / file, 16000)[0])
            assert x.dtype == np.float32 and x.shape == ref.shape
            assert np.abs(x - ref).max() <= 0.01 + 1e-3 * np.abs(ref).max()  # float16 rounding
        # sequential iteration (block-wise) gives the same items as indexing
        items = list(p)
        assert len(items) == len(p)
        for i in (0, 3, len(p) - 1):
            assert items[i][0] == p[i][0] and np.array_equal(items[i][2], p[i][2])


def test_normalisation_stats_are_train_mean_and_std(demo_store):
    store = open_store(demo_store)
    mean, std = store.normalization("arousal")
    allx = np.concatenate([x for _, _, x in store.partition("arousal", "train")]).astype(np.float64)
    assert np.allclose(mean, allx.mean(0), atol=1e-4) and np.allclose(std, allx.std(0), atol=1e-4)
    with pytest.raises(KeyError, match="it has: acted, arousal, valence"):
        store.partition("nope", "train")


def test_info_json(demo_store, capsys):
    assert main(["info", str(demo_store), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    acted = data["tasks"]["acted"]
    assert acted["classes"] == ["angry", "happy", "neutral", "sad"]
    assert acted["feature_config"]["n_mels"] == 128
    train = acted["partitions"]["train"]
    assert train["files"] == sum(train["labels"].values()) and train["frames"] > 0 and train["seconds"] > 0
    assert set(acted["partitions"]) == {"train", "devel", "test"}
    assert train["compression_ratio"] > 2.0


def test_rerun_does_no_work(demo_store, demo_corpus, capsys):
    before = {p: os.stat(demo_store / p).st_mtime_ns for p in tree_digest(demo_store)}
    rc = extract(
        "--store",
        demo_store,
        "--data-path",
        demo_corpus / "data",
        "--multi-task-setup",
        demo_corpus / "multi-task-setup",
        "--tasks",
        *DEMO_TASKS,
        "--frames-per-shard",
        512,
    )
    assert rc == 0 and "every partition is up to date" in capsys.readouterr().out
    assert {p: os.stat(demo_store / p).st_mtime_ns for p in tree_digest(demo_store)} == before


def test_single_task_form_and_adding_a_task_keeps_the_first(tmp_path, demo_corpus):
    store = tmp_path / "s"
    d = demo_corpus / "tasks" / "acted"
    assert (
        extract(
            "--store",
            store,
            "--data-path",
            demo_corpus / "data",
            "--task",
            "acted",
            "-tr",
            d / "train.csv",
            "-v",
            d / "devel.csv",
            "-te",
            d / "test.csv",
        )
        == 0
    )
    first = tree_digest(store / "acted")
    d2 = demo_corpus / "tasks" / "valence"
    assert (
        extract(
            "--store",
            store,
            "-dp",
            demo_corpus / "data",
            "-t",
            "valence",
            "-tr",
            d2 / "train.csv",
            "-v",
            d2 / "devel.csv",
        )
        == 0
    )
    assert open_store(store).tasks == ["acted", "valence"]
    assert open_store(store).partitions("valence") == ["train", "devel"]
    assert tree_digest(store / "acted") == first


def test_feature_config_conflict_needs_overwrite(tmp_path, capsys):
    data, csvs = make_task(tmp_path, partitions=("train",))
    store = tmp_path / "s"
    assert extract("--store", store, "-dp", data, "-t", "t", "-tr", csvs["train"]) == 0
    before = tree_digest(store)
    assert extract("--store", store, "-dp", data, "-t", "t", "-tr", csvs["train"], "-nm", 64) == 2
    err = capsys.readouterr().err
    assert "another feature config" in err and "n_mels 128 -> 64" in err and "--overwrite" in err
    assert tree_digest(store) == before
    assert extract("--store", store, "-dp", data, "-t", "t", "-tr", csvs["train"], "-nm", 64, "--overwrite") == 0
    s = open_store(store)
    assert s.feature_config["n_mels"] == 64 and s.partition("t", "train")[0][2].shape[1] == 64


def test_changed_csv_needs_overwrite(tmp_path, capsys):
    data, csvs = make_task(tmp_path, partitions=("train", "devel"))
    store = tmp_path / "s"
    assert extract("--store", store, "-dp", data, "-t", "t", "-tr", csvs["train"], "-v", csvs["devel"]) == 0
    lines = csvs["devel"].read_text().splitlines()
    csvs["devel"].write_text("\n".join(lines[:-1]) + "\n")  # drop one row
    assert extract("--store", store, "-dp", data, "-t", "t", "-tr", csvs["train"], "-v", csvs["devel"]) == 2
    assert "different devel.csv" in capsys.readouterr().err
    assert (
        extract("--store", store, "-dp", data, "-t", "t", "-tr", csvs["train"], "-v", csvs["devel"], "--overwrite") == 0
    )
    assert len(open_store(store).partition("t", "devel")) == len(lines) - 2


def test_any_rate_and_channels_are_converted(tmp_path, capsys):
    data = tmp_path / "data"
    rows = []
    for i, (rate, ch) in enumerate([(16000, 1), (44100, 2), (8000, 1), (22050, 3)]):
        write_wav(data / f"f{i}.wav", seconds=0.7, rate=rate, channels=ch)
        rows.append((f"f{i}.wav", "a" if i % 2 else "b"))
    csv = write_csv(tmp_path / "train.csv", rows)
    assert main(["extract", "--store", str(tmp_path / "s"), "-dp", str(data), "-t", "t", "-tr", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "3 file(s) downmixed/resampled" in out
    p = open_store(tmp_path / "s").partition("t", "train")
    assert p.meta["converted"] == 3
    cfg = FeatureConfig()
    for (_file, _, x), secs, (rate, _ch) in zip(
        p, p.seconds, [(16000, 1), (44100, 2), (8000, 1), (22050, 3)], strict=False
    ):
        n_in = int(0.7 * rate)
        assert x.shape[0] == cfg.num_frames(resampled_length(n_in, rate, 16000))
        assert abs(secs - 0.7) < 1e-3


def test_unlabelled_test_csv(tmp_path):
    data, csvs = make_task(tmp_path, partitions=("train",))
    write_wav(data / "u1.wav")
    write_wav(data / "u2.wav")
    test = write_csv(tmp_path / "test.csv", ["u1.wav", "u2.wav"], header="file")
    assert extract("--store", tmp_path / "s", "-dp", data, "-t", "t", "-tr", csvs["train"], "-te", test) == 0
    p = open_store(tmp_path / "s").partition("t", "test")
    assert not p.labelled and p.labels == [None, None] and p[1][1] is None and list(p.label_ids) == [-1, -1]


@pytest.mark.parametrize("fps", [64, 100000])
@pytest.mark.slow
def test_webdataset_holds_the_same_content_as_zarr(tmp_path, demo_corpus, fps):
    args = [
        "-dp",
        demo_corpus / "data",
        "--multi-task-setup",
        demo_corpus / "multi-task-setup",
        "--tasks",
        "acted",
        "arousal",
    ]
    assert extract("--store", tmp_path / "z", *args) == 0
    assert extract("--store", tmp_path / "w", "--format", "webdataset", "--frames-per-shard", fps, *args) == 0
    z, w = open_store(tmp_path / "z"), open_store(tmp_path / "w")
    assert w.backend == "webdataset" and z.backend == "zarr" and z.tasks == w.tasks
    if fps == 64:
        assert len(list((tmp_path / "w" / "acted" / "train").glob("shard-*.tar"))) > 3
    for task in z.tasks:
        assert z.classes(task) == w.classes(task)
        assert np.array_equal(z.normalization(task)[0], w.normalization(task)[0])
        for part in z.partitions(task):
            a, b = z.partition(task, part), w.partition(task, part)
            assert a.files == b.files and a.labels == b.labels
            for (fa, la, xa), (fb, lb, xb) in zip(a, b, strict=False):
                assert (fa, la) == (fb, lb) and np.array_equal(xa, xb)
            assert np.array_equal(a[2][2], b[2][2])


def test_webdataset_shards_stream_with_webdataset(tmp_path, demo_corpus):
    import webdataset as wds

    from emonet.store.wds_backend import decode_logmel

    d = demo_corpus / "tasks" / "arousal"
    assert (
        extract(
            "--store",
            tmp_path / "w",
            "-f",
            "webdataset",
            "--frames-per-shard",
            200,
            "-dp",
            demo_corpus / "data",
            "-t",
            "arousal",
            "-tr",
            d / "train.csv",
        )
        == 0
    )
    p = open_store(tmp_path / "w").partition("arousal", "train")
    urls = sorted(str(u) for u in (tmp_path / "w" / "arousal" / "train").glob("shard-*.tar"))
    n = 0
    for sample in wds.WebDataset(urls, shardshuffle=False):
        meta = json.loads(sample["json"])
        x = decode_logmel(sample["logmel.blosc"], meta["frames"], meta["n_mels"])
        i = int(sample["__key__"])
        assert meta["file"] == p.files[i] and meta["label"] == p.labels[i]
        assert np.array_equal(x.astype(np.float32), p[i][2])
        n += 1
    assert n == len(p)


def test_cuda_device_without_gpu_is_a_clear_error(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    data, csvs = make_task(tmp_path, partitions=("train",))
    assert extract("--store", tmp_path / "s", "-dp", data, "-t", "t", "-tr", csvs["train"], "--device", "cuda") == 2
    assert "no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_worker_count_does_not_change_the_store(tmp_path, demo_corpus):
    """In-process (1 worker) and forked workers write byte-identical stores."""
    args = [
        "-dp",
        demo_corpus / "data",
        "--multi-task-setup",
        demo_corpus / "multi-task-setup",
        "--tasks",
        "acted",
        "valence",
        "--frames-per-shard",
        256,
    ]
    assert extract("--store", tmp_path / "w1", "--workers", 1, *args) == 0
    assert extract("--store", tmp_path / "w2", "--workers", 2, *args) == 0
    assert tree_digest(tmp_path / "w1", exclude=()) == tree_digest(tmp_path / "w2", exclude=())


def test_prefetching_decoder_of_the_gpu_path_matches_the_serial_one(demo_corpus):
    """--device cuda decodes in threads ahead of the mel; that path, run on the CPU here,
    gives the same features in the same order as the plain one."""
    from emonet.extraction.featurize import Featurizer

    paths = sorted(str(p) for p in (demo_corpus / "data" / "acted").glob("*.wav"))[:20]
    f = Featurizer(FeatureConfig())
    serial = list(f.many(paths))
    prefetched = list(f.many(paths, prefetch_threads=3))
    assert len(serial) == len(prefetched) == 20
    assert all(np.array_equal(a, b) for a, b in zip(serial, prefetched, strict=False))
