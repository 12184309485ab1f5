"""emonet evaluate on unlabelled partitions and bad input: one line, non-zero exit, nothing written."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from emonet.cli.app import main
from emonet.models import ModelConfig, build_model, save_checkpoint
from emonet.store import open_store
from emonet.utils.devices import native_bf16_cpu
from tests.helpers import make_task, write_csv

pytestmark = pytest.mark.slow  # trains a model to evaluate


@pytest.fixture(scope="module")
def unlabelled_store(tmp_path_factory):
    """Task 'u': a labelled train csv, an unlabelled test csv, no devel; 32 mels (not the demo's)."""
    root = tmp_path_factory.mktemp("unlabelled")
    data, csvs = make_task(root, "u", n_per_class=3, partitions=("train", "test"))
    rows = [line.split(",")[0] for line in csvs["test"].read_text().splitlines()[1:]]
    write_csv(csvs["test"], rows, header="file")
    store = root / "store"
    args = ["extract", "--store", str(store), "--data-path", str(data), "--multi-task-setup", str(root / "csv")]
    assert main([*args, "--tasks", "u", "--num-mels", "32", "-q"]) == 0
    return store


def _model(store_path, path, tasks, ghost=False):
    """An untrained model of the store's tasks (and a task 'ghost' no store holds)."""
    store = open_store(store_path)
    torch.manual_seed(0)
    n_mels = int(store.feature_config["n_mels"])
    classes = {t: store.classes(t) for t in tasks} | ({"ghost": ["x", "y"]} if ghost else {})
    model = build_model(ModelConfig(n_blocks=1, n_filters=4, n_mels=n_mels), classes)
    norm = {t: dict(zip(("mean", "std"), (a.tolist() for a in store.normalization(t)), strict=True)) for t in tasks}
    if ghost:
        norm["ghost"] = {"mean": [0.0] * n_mels, "std": [1.0] * n_mels}
    return save_checkpoint(path, model, feature_config=dict(store.feature_config), norm_stats=norm)


def test_an_unlabelled_partition_gives_predictions_without_metrics(unlabelled_store, tmp_path):
    ckpt = _model(unlabelled_store, tmp_path / "m.safetensors", ["u"])
    assert main(["evaluate", "--model", str(ckpt), "-s", str(unlabelled_store), "-o", str(tmp_path / "ev")]) == 0
    assert json.loads((tmp_path / "ev" / "results.json").read_text()) == {"u": {"test": {"n": 6, "labelled": False}}}
    rows = list(csv.DictReader(open(tmp_path / "ev" / "predictions.csv")))
    assert len(rows) == 6 and all(r["true_label"] == "" and r["predicted_label"] in ("a", "b") for r in rows)
    assert abs(float(rows[0]["p_a"]) + float(rows[0]["p_b"]) - 1) < 1e-5
    assert not list((tmp_path / "ev").glob("*.png"))
    # train is labelled: metrics and a confusion matrix
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(ckpt),
                "-s",
                str(unlabelled_store),
                "--partition",
                "train",
                "-o",
                str(tmp_path / "d"),
            ]
        )
        == 0
    )
    train = json.loads((tmp_path / "d" / "results.json").read_text())["u"]["train"]
    assert train["n"] == 6 and train["compute_precision"] == "fp32"  # what ran, beside the metrics
    # --precision auto: bf16 only on a CPU that computes it natively; results.json says which ran
    out = tmp_path / "auto"
    args = ["--partition", "train", "--precision", "auto", "-o", str(out)]
    assert main(["evaluate", "--model", str(ckpt), "-s", str(unlabelled_store), *args]) == 0
    ran = json.loads((out / "results.json").read_text())["u"]["train"]["compute_precision"]
    assert ran == ("bf16" if native_bf16_cpu() else "fp32")
    assert (tmp_path / "d" / "confusion_u.png").is_file()


def _refused(capsys, args, *needles, code=None):
    rc = main(["evaluate", *args])
    err = capsys.readouterr().err
    assert rc != 0 and (code is None or rc == code)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def test_bad_input_is_one_line_and_writes_nothing(unlabelled_store, demo_store, tmp_path, capsys):
    demo = _model(demo_store, tmp_path / "demo.safetensors", ["acted", "valence"])
    out = tmp_path / "out"
    base = ["-o", str(out)]
    # a store whose features differ from the model's (32 vs 128 mels): the differing field named
    _refused(capsys, ["--model", str(demo), "-s", str(unlabelled_store), *base], "n_mels", str(unlabelled_store))
    # an unknown task: the model's tasks named
    _refused(capsys, ["--model", str(demo), "-s", str(demo_store), "-t", "nope", *base], "'nope'", "acted, valence")
    # a task of the model that no store holds; a model none of whose tasks the stores hold
    u = _model(unlabelled_store, tmp_path / "u.safetensors", ["u"], ghost=True)
    _refused(
        capsys, ["--model", str(u), "-s", str(unlabelled_store), "-t", "ghost", *base], "'ghost'", "none of the stores"
    )
    only = _model(demo_store, tmp_path / "g.safetensors", [], ghost=True)
    _refused(capsys, ["--model", str(only), "-s", str(demo_store), *base], "none of the tasks", "ghost")
    # a partition missing: the partitions the task has are named
    _refused(
        capsys,
        ["--model", str(u), "-s", str(unlabelled_store), "--partition", "devel", *base],
        "'devel'",
        "train, test",
    )
    # a file that is not a checkpoint, a missing one, a task pack, a bad option value
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    _refused(capsys, ["--model", str(junk), "-s", str(demo_store), *base], "not an EmoNet checkpoint")
    _refused(
        capsys, ["--model", str(tmp_path / "none.safetensors"), "-s", str(demo_store), *base], "no such checkpoint"
    )
    pack = tmp_path / "acted.safetensors"
    assert main(["task", "export", str(demo), "acted", str(pack)]) == 0
    capsys.readouterr()
    _refused(capsys, ["--model", str(pack), "-s", str(demo_store), *base], "task pack", "emonet task attach")
    _refused(capsys, ["--model", str(demo), "-s", str(demo_store), "--partition", "dev", *base], "--partition")
    _refused(capsys, ["--model", str(demo), "-s", str(tmp_path / "no-store"), *base], "no-store")
    flipped = tmp_path / "flipped.safetensors"
    data = bytearray(demo.read_bytes())
    data[-10] ^= 0xFF  # a byte of the last tensor
    flipped.write_bytes(bytes(data))
    _refused(capsys, ["--model", str(flipped), "-s", str(demo_store), *base], "corrupt")
    # an output path that is a file
    (tmp_path / "file").write_text("x")
    _refused(capsys, ["--model", str(demo), "-s", str(demo_store), "-o", str(tmp_path / "file")], "is a file")
    assert not out.exists()
