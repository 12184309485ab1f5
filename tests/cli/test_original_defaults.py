"""The original EmoNet's defaults: a command line with only the required options gives the
original's values for every option of its table, and every improvement is off; the original's
flags, given, land in the fields they meant."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import typer

from emonet.cli.app import app
from emonet.cli.argv import expand_list_options, list_option_names
from emonet.cli.train import given_config
from emonet.data.features import FeatureConfig
from emonet.training.config import TrainConfig

REQUIRED = ["--store", "features", "-ebp", "runs"]

# (what the original's table calls it, the config's value, the original's default)
ORIGINAL = [
    ("-bs, --batch-size", lambda c: c.batch_size, 64),
    ("-p, --patience", lambda c: c.patience, 20),
    ("-lr, --learning-rate", lambda c: c.learning_rate, 0.1),
    ("-o, --optimizer", lambda c: c.optimizer, "sgd"),
    ("-do, --dropout", lambda c: c.model.dropout, (0.0, 0.5)),
    ("-N, --number-of-resnet-blocks", lambda c: c.model.n_blocks, 2),
    ("-nf, --number-of-filters", lambda c: c.model.n_filters, 32),
    ("-wf, --widen-factor", lambda c: c.model.widen_factor, 1),
    ("-w, --window", lambda c: c.window, None),
    ("-l, --loss", lambda c: c.loss, "crossentropy"),
    ("-sfl, --share-feature-layer", lambda c: c.model.share_feature_layer, False),
    ("-iwd, --individual-weight-decay", lambda c: c.individual_weight_decay, False),
    ("-bw, --balanced-weights", lambda c: c.balanced_weights, False),
    ("-im, --initial-model", lambda c: c.initial_model, None),
    ("three stages lr, lr/10, lr/100", lambda c: c.stages, 3),
    ("early stopping min delta", lambda c: c.min_delta, 0.005),
    ("L2 on the 3x3 and adapter kernels", lambda c: c.shared_l2, 1e-6),
    ("focal gamma", lambda c: c.focal_gamma, 2.0),
    ("focal alpha", lambda c: c.focal_alpha, 0.25),
    ("adapters in parallel (Rebuffi et al.)", lambda c: c.model.adapter_type, "parallel"),
]
SINGLE = [("-e, --epochs", lambda c: c.epochs, 1000), ("-m (one task)", lambda c: c.mode, "scratch")]
MULTI = [
    ("-e, --epochs", lambda c: c.epochs, 50),
    ("-spe, --steps-per-epoch", lambda c: c.steps_per_epoch, 20),
    ("one batch of every task per iteration", lambda c: c.task_schedule, "every-task"),
    ("-m (several tasks)", lambda c: c.mode, "adapters"),
]
# Every improvement is an option, off unless asked for.
IMPROVEMENTS_OFF = {
    "band_norm": False,
    "score_whole": False,
    "select_best": False,
    "shared_optimizer": False,
    "identity_adapters": False,
    "class_weighted_mean": False,
    "copy_task_parts": False,
    "recalibrate_bn": 0,
    "deterministic": False,  # not the procedure: which kernels run (GPU runs repeat bit for bit)
}


def _config(*argv: str) -> TrainConfig:
    """The config of ``emonet train REQUIRED argv``, parsed as the command line is."""
    root = typer.main.get_command(app)
    args = expand_list_options(["train", *REQUIRED, *argv], list_option_names(root, ["train"]))
    return given_config(root.commands["train"].make_context("train", args[1:]))


@pytest.mark.parametrize("kind", ["single-task", "multi-task"])
def test_a_bare_command_line_has_the_originals_defaults(kind):
    config = _config("-t", "a") if kind == "single-task" else _config("-t", "a", "b", "c")
    table = ORIGINAL + (SINGLE if kind == "single-task" else MULTI)
    wrong = [f"{name}: {get(config)!r}, the original's {want!r}" for name, get, want in table if get(config) != want]
    assert not wrong, wrong
    assert {k: getattr(config, k) for k in IMPROVEMENTS_OFF} == IMPROVEMENTS_OFF
    assert config.steps_per_epoch is None or kind == "multi-task"  # one task: an epoch is one pass of train


def test_the_only_default_that_differs_is_the_classifier_which_the_readme_explains():
    """The original's -c avgpool without -w cannot run (its flattened top needs a fixed input
    size), so the default top is the attention, the original's other choice, and avgpool needs -w."""
    assert _config("-t", "a").model.classifier == "attention"
    assert _config("-t", "a", "-c", "FCNAttention").model.classifier == "attention"
    assert _config("-t", "a", "-c", "avgpool", "-w", "4").model.classifier == "avgpool"
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "The default classifier is `attention` (`FCNAttention`)" in readme


def test_the_extractors_mel_bands_are_the_originals():
    assert FeatureConfig().n_mels == 128  # -nm, --num-mels
    extract = typer.main.get_command(app).commands["extract"]
    assert {p.name: p.default for p in extract.params}["num_mels"] == 128


def test_the_originals_flags_land_in_the_fields_they_meant():
    config = _config(
        "-t", "a", "b", "-bs", "16", "-e", "7", "-p", "3", "-lr", "0.05", "-o", "adam", "-do", "0.1,0.2",
        "-N", "1", "-nf", "8", "-wf", "2", "-c", "FCNAttention", "-w", "2.5", "-l", "focal", "-m", "adapters",
        "-sfl", "-iwd", "-bw", "-spe", "9",
    )  # fmt: skip
    got = (
        config.batch_size, config.epochs, config.patience, config.learning_rate, config.optimizer,
        config.model.dropout, config.model.n_blocks, config.model.n_filters, config.model.widen_factor,
        config.model.classifier, config.window, config.loss, config.mode, config.model.share_feature_layer,
        config.individual_weight_decay, config.balanced_weights, config.steps_per_epoch,
    )  # fmt: skip
    assert got == (
        16,
        7,
        3,
        0.05,
        "adam",
        (0.1, 0.2),
        1,
        8,
        2,
        "attention",
        2.5,
        "focal",
        "adapters",
        True,
        True,
        True,
        9,
    )


def test_every_improvement_field_is_pinned_here():
    """A new boolean option of TrainConfig is an improvement: it must be listed above (off)."""
    flags = {f.name for f in dataclasses.fields(TrainConfig) if f.type in ("bool", bool)}
    seed_flags = {"balanced_weights", "individual_weight_decay"}
    counts = {"recalibrate_bn"}  # improvements that take a number, off at 0
    assert flags - seed_flags == set(IMPROVEMENTS_OFF) - counts, "list the new option in IMPROVEMENTS_OFF"
