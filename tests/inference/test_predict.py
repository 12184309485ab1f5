"""emonet.inference: predictions from audio files with a checkpoint alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emonet.data.features import FeatureConfig
from emonet.errors import InputError, UnknownTaskError
from emonet.inference.inputs import collect_inputs
from emonet.inference.output import predictions_json, render_predictions
from emonet.inference.predict import Predictor
from emonet.models import ModelConfig, build_model, save_checkpoint
from emonet.store import open_store
from emonet.utils.devices import native_bf16_cpu
from tests.helpers import write_csv, write_wav


@pytest.fixture(scope="module")
def checkpoint(demo_store, tmp_path_factory):
    store = open_store(demo_store)
    tasks = {t: store.classes(t) for t in ("acted", "valence")}
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_blocks=1, n_filters=4, n_mels=int(store.feature_config["n_mels"])), tasks)
    with torch.no_grad():  # an untrained model predicts near-uniform: make its outputs sensitive
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    norm = {t: dict(zip(("mean", "std"), (a.tolist() for a in store.normalization(t)), strict=True)) for t in tasks}
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    return save_checkpoint(path, model, feature_config=dict(store.feature_config), norm_stats=norm)


def test_predict_matches_the_store_features(checkpoint, demo_store, demo_corpus):
    """The same files through a store (extract) and straight from audio give the same
    probabilities: the checkpoint's feature config and statistics reproduce extraction."""
    store = open_store(demo_store)
    part = store.partition("acted", "test")
    files = [demo_corpus / "data" / f for f in part.files]
    predictor = Predictor(checkpoint, batch_size=3)
    report = predictor.predict(files, tasks=["acted"])
    assert [p.file for p in report.predictions] == [str(f) for f in files]
    from emonet.data.crops import Normalizer, normalize

    norm = Normalizer(*store.normalization("acted"))
    with torch.no_grad():
        for path, pred, (_file, _label, logmel) in zip(files, report.predictions, part, strict=True):
            assert np.array_equal(predictor.logmel(path), logmel)  # bit for bit the stored features
            x = normalize(logmel, norm)[None]
            probs = torch.softmax(predictor.model(x, None, "acted"), -1)[0]
            assert pred.label == store.classes("acted")[int(probs.argmax())]
            # batch of 3 vs alone: float32 kernel rounding of softmax outputs in [0, 1] (~1e-7 here)
            np.testing.assert_allclose(list(pred.probabilities.values()), probs.numpy(), rtol=0, atol=1e-6)
    assert report.files == len(files) and report.audio_seconds > 0


def test_batching_does_not_change_predictions(checkpoint, demo_corpus):
    files = collect_inputs([demo_corpus / "data" / "valence"])[:7]
    one = Predictor(checkpoint, batch_size=1).predict(files)
    many = Predictor(checkpoint, batch_size=4).predict(files)
    assert [p.label for p in one.predictions] == [p.label for p in many.predictions]
    for a, b in zip(one.predictions, many.predictions, strict=True):
        # batch 1 vs 4: other float32 kernels, probabilities round at ~1e-6; a padding leak moves them > 1e-3
        np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-5)
    assert [p.task for p in one.predictions[:2]] == ["acted", "valence"]


@pytest.mark.slow
def test_inputs_from_folders_csvs_and_any_rate(tmp_path, checkpoint):
    a = write_wav(tmp_path / "in" / "a.wav", seconds=0.7)
    b = write_wav(tmp_path / "in" / "sub" / "b.flac", seconds=0.5, rate=44100, channels=2, subtype="PCM_16")
    (tmp_path / "in" / "notes.txt").write_text("not audio")
    csv = write_csv(tmp_path / "list.csv", [("in/a.wav", "x")])
    files = collect_inputs([tmp_path / "in", csv])
    assert files == [a, b]  # the csv's a.wav is the same file: once
    report = Predictor(checkpoint).predict(files, tasks=["valence"])
    assert len(report.predictions) == 2
    text = render_predictions(report.predictions, "csv")
    # evaluate's predictions.csv columns without true_label, which audio alone cannot give
    assert text.splitlines()[0] == "file,task,predicted_label,p_negative,p_neutral,p_positive"
    rows = json.loads(predictions_json(report.predictions))
    assert abs(sum(rows[1]["probabilities"].values()) - 1) < 1e-4


def test_bad_input_is_one_line_or_skipped(tmp_path, checkpoint):
    good = write_wav(tmp_path / "good.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wav")
    nan = tmp_path / "nan.wav"
    import soundfile as sf

    sf.write(str(nan), np.array([0.1, np.nan, 0.2] * 2000, np.float32), 16000, subtype="FLOAT")
    predictor = Predictor(checkpoint)
    with pytest.raises(InputError, match="bad.wav"):
        predictor.predict([good, bad])
    report = predictor.predict([good, bad, nan], skip_bad=True)
    assert {s["file"] for s in report.skipped} == {str(bad), str(nan)}
    assert {p.file for p in report.predictions} == {str(good)}
    with pytest.raises(UnknownTaskError, match="acted, valence"):
        predictor.predict([good], tasks=["nope"])
    with pytest.raises(InputError, match="no audio files"):
        collect_inputs([tmp_path / "empty"] if (tmp_path / "empty").mkdir() is None else [])
    with pytest.raises(InputError, match="not found"):
        collect_inputs([tmp_path / "missing-folder"])


def test_cli_writes_csv_and_json_and_refuses_bad_input(tmp_path, checkpoint, demo_corpus, capsys):
    from emonet.cli.app import main

    folder = demo_corpus / "data" / "arousal"
    out_csv = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(checkpoint), str(folder), "--output", str(out_csv)]) == 0
    lines = out_csv.read_text().splitlines()
    n_files = len(collect_inputs([folder]))
    assert lines[0].startswith("file,task,predicted_label,") and len(lines) == 1 + 2 * n_files
    assert "files/s" in capsys.readouterr().out
    assert main(["predict", "--model", str(checkpoint), "--task", "valence", "-f", "json", str(folder)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == n_files and {r["task"] for r in rows} == {"valence"}
    assert main(["predict", "--model", str(checkpoint), "--task", "nope", str(folder)]) == 2
    assert "acted, valence" in capsys.readouterr().err
    assert main(["predict", "--model", str(folder), str(folder)]) == 2  # a folder is no checkpoint
    assert main(["predict", "--model", str(checkpoint), str(tmp_path / "nothing.wav")]) == 2
    err = capsys.readouterr().err
    assert "nothing.wav" in err and "Traceback" not in err


def test_a_csv_row_naming_a_segment_is_refused_not_scored_whole(tmp_path):
    from emonet.errors import InputError

    write_wav(tmp_path / "long.wav", seconds=2.0)
    whole = tmp_path / "whole.csv"
    whole.write_text("file,label,start,end\nlong.wav,x,,\n")
    assert collect_inputs([whole]) == [tmp_path / "long.wav"]  # empty bounds: the whole file
    seg = tmp_path / "seg.csv"
    seg.write_text("file,label,start,end\nlong.wav,x,,\nlong.wav,x,0.5,1.5\n")
    with pytest.raises(InputError, match=r"seg.csv, row 3: names a segment"):
        collect_inputs([seg])


def test_all_tasks_at_once_predict_as_each_task_alone(tmp_path):
    """All three tasks of a model on the same files (each file decoded once for all tasks, its
    own normalisation per task) give each task's labels and probabilities of that task alone."""
    fc = FeatureConfig()
    tasks = {"a": ["x", "y", "z"], "b": ["p", "q"], "c": ["1", "2", "3", "4"]}
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_blocks=1, n_filters=4, n_mels=fc.n_mels), tasks)
    with torch.no_grad():
        for name, buf in model.named_buffers():  # trained-like statistics, so every fold matters
            if name.endswith("running_mean"):
                buf.normal_(0, 0.2)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    gen = np.random.default_rng(0)
    norm = {
        t: {"mean": gen.normal(-5, 1, fc.n_mels).tolist(), "std": gen.uniform(1, 3, fc.n_mels).tolist()} for t in tasks
    }
    ckpt = save_checkpoint(tmp_path / "m.safetensors", model, feature_config=fc.to_dict(), norm_stats=norm)
    files = [write_wav(tmp_path / f"{i}.wav", seconds=0.4 + 0.37 * i, freq=200 + 90 * i) for i in range(7)]
    alone = Predictor(ckpt, batch_size=3)
    before = [p for t in tasks for p in alone.predict(files, [t]).predictions]
    after = sorted(Predictor(ckpt, batch_size=3).predict(files).predictions, key=lambda p: list(tasks).index(p.task))
    assert [(p.file, p.task, p.label) for p in after] == [(p.file, p.task, p.label) for p in before]
    a = np.array([list(p.probabilities.values()) for p in after if p.task == "c"])
    b = np.array([list(p.probabilities.values()) for p in before if p.task == "c"])
    assert np.abs(b - 0.25).max() > 1e-2  # not uniform: the check below is not vacuous
    for task in tasks:
        a = np.array([list(p.probabilities.values()) for p in after if p.task == task])
        b = np.array([list(p.probabilities.values()) for p in before if p.task == task])
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_auto_precision_is_recorded_as_what_ran(tmp_path):
    fc = FeatureConfig()
    model = build_model(ModelConfig(n_blocks=1, n_filters=4, n_mels=fc.n_mels), {"a": ["x", "y"]})
    norm = {"a": {"mean": [0.0] * fc.n_mels, "std": [1.0] * fc.n_mels}}
    ckpt = save_checkpoint(tmp_path / "m.safetensors", model, feature_config=fc.to_dict(), norm_stats=norm)
    report = Predictor(ckpt, precision="auto").predict([write_wav(tmp_path / "a.wav")])
    assert report.precision == ("bf16" if native_bf16_cpu() else "fp32")
