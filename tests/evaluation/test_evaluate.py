"""emonet evaluate: a trained run's best checkpoint scored again, through the library and the CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from emonet.cli.app import main
from emonet.evaluation import evaluate
from emonet.inference.predict import Predictor
from emonet.store import open_store

pytestmark = pytest.mark.slow  # trains a run to evaluate

REPORT_KEYS = ("uar", "accuracy", "macro_f1", "macro_precision", "n", "per_class", "confusion_matrix", "epoch")


@pytest.fixture(params=["trained_run", "windowed_run"])
def any_run(request):
    """A run without -w (whole utterances) and one with -w and avgpool (one window per clip)."""
    return request.getfixturevalue(request.param)


def test_evaluate_reproduces_the_runs_test_metrics(any_run, demo_store, capsys):
    """The trainer scores test with the weights it saves as best.safetensors: evaluating that
    file on test gives the run's results.json test metrics exactly (with -w: on the same one
    window per clip, read from the checkpoint's run config)."""
    run, _ = any_run
    rc = main(["evaluate", "--model", str(run / "best.safetensors"), "--store", str(demo_store), "-bs", "5"])
    assert rc == 0
    out = run / "evaluate-test"  # the default: beside the checkpoint
    ours, theirs = json.loads((out / "results.json").read_text()), json.loads((run / "results.json").read_text())
    assert set(ours) == set(theirs) == {"acted", "arousal"}
    for task in ours:
        assert set(ours[task]) == {"test"}
        for key in REPORT_KEYS:
            assert ours[task]["test"][key] == theirs[task]["test"][key], (task, key)
    printed = capsys.readouterr().out
    assert "acted" in printed and f"{ours['acted']['test']['uar']:.4f}" in printed and "per class" in printed
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    store = open_store(demo_store)
    assert len(rows) == sum(len(store.partition(t, "test")) for t in ours)
    acted = [r for r in rows if r["task"] == "acted"]
    assert [r["file"] for r in acted] == store.partition("acted", "test").files
    assert [r["true_label"] for r in acted] == store.partition("acted", "test").labels
    assert {"p_angry", "p_high"} <= set(rows[0]) and rows[0]["p_high"] == ""  # acted rows leave arousal's empty
    hits = sum(r["true_label"] == r["predicted_label"] for r in acted)
    assert hits == round(ours["acted"]["test"]["accuracy"] * len(acted))
    for task in ours:
        assert (out / f"confusion_{task}.png").read_bytes()[:4] == b"\x89PNG"


def test_results_do_not_depend_on_the_batch_size(trained_run, demo_store):
    run, _ = trained_run
    ckpt = run / "best.safetensors"
    one, many = (evaluate(ckpt, [demo_store], ["acted"], "devel", batch_size=bs, write=False) for bs in (1, 64))
    a, b = one.tasks["acted"], many.tasks["acted"]
    assert np.array_equal(a.predictions, b.predictions) and a.metrics == b.metrics
    # batch 1 and 64 run other float32 kernels: logits round differently at ~1e-6 relative, softmax
    # moves probabilities by at most a quarter of that; 1e-5 is 10x above, a masking bug moves them > 1e-3
    np.testing.assert_allclose(a.probabilities, b.probabilities, rtol=0, atol=1e-5)
    assert a.metrics["n"] == len(open_store(demo_store).partition("acted", "devel"))


def test_predict_and_evaluate_agree_on_the_same_files(any_run, demo_store, demo_corpus):
    """predict from the 16 kHz wavs and evaluate on the store extracted from them: the same
    labels; probabilities within the float16 rounding of stored features (predict rounds too).
    An avgpool model is scored on one window per file by both."""
    run, _ = any_run
    ckpt = run / "best.safetensors"
    scored = evaluate(ckpt, [demo_store], partition="test", write=False)
    predictor = Predictor(ckpt, batch_size=4)
    for task, e in scored.tasks.items():
        report = predictor.predict([demo_corpus / "data" / f for f in e.files], [task])
        assert [p.label for p in report.predictions] == [e.classes[k] for k in e.predictions]
        probs = np.array([list(p.probabilities.values()) for p in report.predictions])
        # same float16-rounded features (predict's equal the store's bit for bit), other batches and
        # kernels: float32 rounding (~1e-6) plus the logits' scale; 1e-4 stays far below a wrong feature or mask
        np.testing.assert_allclose(probs, e.probabilities, rtol=0, atol=1e-4)
