"""The original EmoNet's windows: no -w by default (whole utterances in training and scoring);
with -w random training crops and ONE scored window per clip (from the midpoint when half the
clip is longer than the window); --score-whole and avgpool's need of a window."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import emonet
from emonet.cli.app import main
from emonet.cli.train import config_default
from emonet.data.batching import padded_batch, utterance_batches
from emonet.data.crops import normalize, scoring_windows
from emonet.data.features import FeatureConfig
from emonet.data.normalization import task_normalizer
from emonet.data.store_access import partition_index
from emonet.errors import ConfigError
from emonet.evaluation.evaluator import run_window
from emonet.models import ModelConfig, build_model
from emonet.training import TrainConfig, train
from emonet.training.callbacks import Callback
from emonet.training.streams import StreamSpec, epoch_stream

W4 = 1 + 4 * 16000 // 512  # -w 4 at 16 kHz and hop 512: 126 frames


def test_one_window_per_clip_starts_at_the_midpoint_of_a_long_clip():
    ten, three, six = (1 + s * 16000 // 512 for s in (10, 3, 6))  # 313, 94 and 188 frames
    offsets, valid = scoring_windows(np.array([ten, three, six]), W4)
    # 10 s: half (156.5 frames) is longer than the window: frames 156..281; 3 s: all of it, from 0;
    # 6 s: half (94) is shorter than the window: from 0, the first 126 frames
    assert offsets.tolist() == [156, 0, 0] and valid.tolist() == [126, 94, 126]
    offsets, valid = scoring_windows(np.array([ten, three]), None)  # no window: whole clips
    assert offsets.tolist() == [0, 0] and valid.tolist() == [ten, three]


def test_scored_batches_hold_each_clips_one_window(small_store):
    """utterance_batches (devel, test, emonet evaluate) and padded_batch (predict) cut the same
    window of each clip of a real store: some clips from their midpoint, some from 0."""
    store = emonet.open_store(small_store)
    part = store.partition("acted", "devel")
    index, norm = partition_index(part), task_normalizer(store, "acted", True)
    window = int(np.median(part.lengths)) // 2  # half the clips are longer than twice the window
    starts = set()
    for ids, x, lengths in utterance_batches(part, index, norm, 3, window=window):
        pieces = [normalize(part.logmel(int(i), np.float16), norm) for i in ids]
        px, plengths = padded_batch(pieces, window)
        assert torch.equal(x, px) and torch.equal(lengths, plengths)
        for j in range(len(ids)):
            n, start = len(pieces[j]), (len(pieces[j]) // 2 if len(pieces[j]) / 2 > window else 0)
            starts.add(start > 0)
            assert int(lengths[j]) == min(window, n - start)
            assert torch.equal(x[j, : int(lengths[j])], pieces[j][start : start + int(lengths[j])])
            assert not x[j, int(lengths[j]) :].any()
    assert starts == {True, False}


def test_without_a_window_training_batches_are_whole_utterances(small_store):
    store = emonet.open_store(small_store)
    part = store.partition("acted", "train")
    index, norm = partition_index(part), task_normalizer(store, "acted", True)
    seen = []
    for x, lengths, _ in epoch_stream(part, index, StreamSpec("acted", 4, None, seed=1), norm, 0, 0, 1):
        assert x.shape[1] == int(lengths.max())  # padded to the batch's longest clip
        seen.extend(lengths.tolist())
    assert sorted(seen) == sorted(np.maximum(part.lengths, 1).tolist())


def test_window_defaults_to_none_in_the_config_and_the_cli():
    assert TrainConfig(stores=["s"], tasks=["a"], experiments="e").window is None
    assert config_default("window") is None and config_default("score_whole") is False


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"model": ModelConfig(classifier="avgpool")}, "-c avgpool flattens the 8x8-pooled map"),
        ({"score_whole": True}, "--score-whole only applies with -w"),
        ({"model": ModelConfig(classifier="avgpool"), "window": 4.0, "score_whole": True}, "--score-whole: -c avgpool"),
    ],
)
def test_options_that_need_a_window_are_refused(options, needle):
    with pytest.raises(ConfigError, match=needle):
        TrainConfig(stores=["s"], tasks=["a"], experiments="e", **options)


def test_cli_refuses_avgpool_without_a_window_in_one_line(small_store, tmp_path, capsys):
    rc = main(["train", "--store", str(small_store), "-t", "acted", "-ebp", str(tmp_path / "e"), "-c", "avgpool"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc != 0 and len(lines) == 1 and "add -w SECONDS" in lines[0], err
    assert not (tmp_path / "e").exists()


class _Inputs(Callback):
    """Records the (frames, lengths) of every training forward pass."""

    def __init__(self):
        self.seen = []

    def on_fit_start(self, trainer) -> None:
        def hook(module, args):
            if module.training:
                self.seen.append((args[0].shape[1], args[1].tolist()))

        trainer.model.register_forward_pre_hook(hook)


@pytest.mark.slow
def test_a_run_without_a_window_trains_on_whole_utterances(small_store, tmp_path):
    cfg = TrainConfig(
        stores=[str(small_store)], tasks=["acted"], experiments=str(tmp_path),
        model=ModelConfig(n_blocks=1, n_filters=4), batch_size=8, epochs=1, steps_per_epoch=3, learning_rate=0.01,
        device="cpu",
    )  # fmt: skip
    inputs = _Inputs()
    _, results = train(cfg, callbacks=[inputs])
    lengths = set(np.maximum(emonet.open_store(small_store).partition("acted", "train").lengths, 1).tolist())
    assert len(inputs.seen) == 3
    for frames, batch in inputs.seen:
        assert frames == max(batch) and set(batch) <= lengths  # whole clips, padded to the longest
    assert results["acted"]["test"]["n"] > 0


def test_a_config_yaml_from_before_one_window_scoring_resumes_as_it_ran():
    """config.yaml of an earlier run (no score_whole): it scored whole clips, and its avgpool
    was the global mean, which is meanpool now."""
    old = TrainConfig(stores=["s"], tasks=["a"], experiments="e", window=4.0).to_dict()
    del old["score_whole"]
    old["model"]["classifier"] = "avgpool"
    again = TrainConfig.from_dict(old)
    assert again.score_whole is True and again.model.classifier == "meanpool"
    new = TrainConfig(stores=["s"], tasks=["a"], experiments="e", window=4.0).to_dict()
    assert TrainConfig.from_dict(new).score_whole is False


@pytest.mark.slow  # extracts the demo store (128 mels: the 8x8 top needs at least 57)
def test_an_avgpool_initial_model_needs_its_own_window(demo_store, tmp_path, capsys):
    base = tmp_path / "base.safetensors"
    args = ["init-model", str(base), "-s", str(demo_store), "-t", "acted", "-m", "scratch", "-N", "1", "-nf", "4"]
    assert main([*args, "-c", "avgpool", "-w", "2"]) == 0
    capsys.readouterr()
    common = dict(stores=[str(demo_store)], tasks=["arousal"], experiments=str(tmp_path / "e"), mode="finetune")
    for options, needle in (
        ({}, "the initial model has the avgpool top, which takes 63-frame windows: add its -w"),
        ({"window": 4.0}, "-w 4 s (126 frames): the initial model's avgpool top takes 63 frames; use its -w"),
        ({"window": 2.0, "score_whole": True}, "--score-whole: the avgpool top scores one fixed-size window"),
    ):
        with pytest.raises(ConfigError, match=re.escape(needle)):
            train(TrainConfig(**common, initial_model=str(base), device="cpu", **options))
    assert not (tmp_path / "e").exists()


def test_evaluate_reads_the_runs_window_from_the_checkpoint():
    """emonet evaluate scores as the run did: one window with -w, whole clips without it, with
    --score-whole, or for a run from before one-window scoring (no score_whole in its config)."""
    net = build_model(ModelConfig(n_blocks=1, n_filters=4), {"a": ["x", "y"]})
    features = FeatureConfig().to_dict()

    def meta(**run):
        return {"feature_config": features, "extra": {"train_config": run}}

    assert run_window(net, meta(window=4.0, score_whole=False)) == W4
    assert run_window(net, meta(window=None, score_whole=False)) is None
    assert run_window(net, meta(window=4.0, score_whole=True)) is None
    assert run_window(net, meta(window=4.0)) is None
    assert run_window(net, {"feature_config": features}) is None
