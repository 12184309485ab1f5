"""Cross-corpus scoring: one task's head scores another task's partition through a label map."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from emonet.cli.app import main
from emonet.data.crops import Normalizer, normalize
from emonet.evaluation import evaluate
from emonet.models import load_model
from emonet.store import open_store
from tests.evaluation.test_bad_input import _model, _refused

pytestmark = pytest.mark.slow  # builds models and scores stores

MAP = "negative=angry,positive=happy"  # valence's neutral is acted's neutral by name


@pytest.fixture(scope="module")
def demo_model(demo_store, tmp_path_factory):
    """An untrained model of the demo's three tasks, with each task's own train statistics."""
    return _model(demo_store, tmp_path_factory.mktemp("xc") / "m.safetensors", ["acted", "arousal", "valence"])


def _by_hand(ckpt, store_path, head, task):
    """Each utterance of the task's test partition through the head alone, one at a time."""
    net, _ = load_model(ckpt, torch.device("cpu"))
    net.eval()
    stats = net.norm_stats[head]
    norm = Normalizer(np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32))
    part = open_store(store_path).partition(task, "test")
    preds, labels = [], []
    with torch.no_grad():
        for i in range(len(part)):
            _, label, logmel = part[i]
            x = normalize(logmel, norm)[None]
            preds.append(int(net(x, torch.tensor([x.shape[1]]), head).argmax(1)))
            labels.append(label)
    return np.asarray(preds), labels, list(part.files)


def test_a_head_scores_another_tasks_partition_as_by_hand(demo_model, demo_store, tmp_path):
    result = evaluate(demo_model, [demo_store], ["valence"], head="acted", label_map=MAP, output=tmp_path / "ev")
    e = result.tasks["acted_on_valence"]
    preds, labels, files = _by_hand(demo_model, demo_store, "acted", "valence")
    assert e.files == files and np.array_equal(e.predictions, preds)
    classes = ["angry", "happy", "neutral", "sad"]
    assert e.classes == classes and e.head == "acted" and e.dropped == 0
    mapped = [{"negative": "angry", "positive": "happy"}.get(lb, lb) for lb in labels]
    assert [classes[i] for i in e.labels] == mapped
    # UAR over the classes the target has (sad is absent); a prediction of sad is an error
    recalls = [np.mean(preds[[m == c for m in mapped]] == classes.index(c)) for c in ("angry", "happy", "neutral")]
    assert e.metrics["uar"] == pytest.approx(np.mean(recalls))
    assert e.metrics["accuracy"] == pytest.approx(np.mean(preds == e.labels))
    assert e.metrics["per_class"]["sad"]["support"] == 0
    # the files name the head and the scored task
    out = tmp_path / "ev"
    report = json.loads((out / "results.json").read_text())["acted_on_valence"]["test"]
    assert report["head"] == "acted" and report["task"] == "valence" and report["uar"] == e.metrics["uar"]
    assert report["label_map"] == {"negative": "angry", "positive": "happy"} and report["dropped"] == 0
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert {(r["task"], r["head"]) for r in rows} == {("valence", "acted")}
    assert [r["predicted_label"] for r in rows] == [classes[i] for i in preds]
    assert [r["true_label"] for r in rows] == mapped
    assert (out / "confusion_acted_on_valence.png").read_bytes()[:4] == b"\x89PNG"


def test_the_own_task_through_its_head_is_plain_evaluate(demo_model, demo_store):
    plain = evaluate(demo_model, [demo_store], ["acted"], write=False).tasks["acted"]
    cross = evaluate(demo_model, [demo_store], ["acted"], head="acted", write=False).tasks["acted_on_acted"]
    assert np.array_equal(plain.predictions, cross.predictions) and plain.metrics == cross.metrics


def test_unmapped_labels_are_refused_or_dropped_on_request(demo_model, demo_store, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["--model", str(demo_model), "-s", str(demo_store), "-o", str(out)]
    _refused(
        capsys, [*base, "--head", "acted", "-t", "valence"], "negative, positive", "--label-map", "--drop-unmapped"
    )
    _refused(capsys, [*base, "--head", "acted", "-t", "valence", "--label-map", "negative=furious"], "'furious'")
    _refused(capsys, [*base, "--head", "nope", "-t", "valence"], "--head 'nope'", "acted, arousal, valence")
    _refused(capsys, [*base, "--head", "acted"], "--tasks")
    _refused(capsys, [*base, "--label-map", MAP], "--label-map needs --head")
    _refused(capsys, [*base, "--head", "acted", "-t", "valence", "--label-map", str(tmp_path / "m.json")], "m.json")
    assert not out.exists()
    args = [*base, "--head", "acted", "-t", "valence", "--label-map", "negative=angry", "--drop-unmapped"]
    assert main(["evaluate", *args]) == 0
    assert "dropped" in capsys.readouterr().out
    n_positive = open_store(demo_store).partition("valence", "test").labels.count("positive")
    report = json.loads((out / "results.json").read_text())["acted_on_valence"]["test"]
    assert n_positive > 0 and report["dropped"] == n_positive
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert len(rows) == report["n"] and {r["true_label"] for r in rows} == {"angry", "neutral"}
