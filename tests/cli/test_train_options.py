"""`emonet train`'s options: one table of TrainConfig fields, the defaults the config's, the loss
and optimiser choices the registries', and the command line's config the Python API's."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import typer

from emonet.cli import model_options as mo
from emonet.cli import train as train_cli
from emonet.cli.app import app, main
from emonet.cli.argv import given_options
from emonet.errors import ConfigError
from emonet.models import ModelConfig
from emonet.training.config import TrainConfig
from emonet.training.losses import LOSSES
from emonet.training.optim import OPTIMIZERS


def _command():
    return typer.main.get_command(app).commands["train"]


def _parse(*argv: str):
    return _command().make_context("train", list(argv))


def test_every_option_is_a_config_field():
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    for name in train_cli.OPTIONS:
        if name in mo.CONFIG_FIELDS:
            assert mo.CONFIG_FIELDS[name] in model_fields, name
        else:
            assert name in train_fields or name in train_cli.RUN_OPTIONS, name
    assert [p.name for p in _command().params if p.name != "help"] == list(train_cli.OPTIONS)


def test_defaults_are_the_configs():
    """An option left out has its config field's default (a flag: off; None: the field's None)."""
    train_defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    ctx = _parse()
    for name, value in ctx.params.items():
        if name in train_cli.RUN_OPTIONS:
            continue
        if name in mo.CONFIG_FIELDS:
            field = mo.CONFIG_FIELDS[name]
            expect = getattr(ModelConfig(), field)
            value = mo.model_config_from({name: value}) if field == "dropout" else value
            assert (value.dropout if field == "dropout" else value) == expect, name
        elif train_defaults[name] is dataclasses.MISSING or name == "label_order":  # required / a factory
            assert value in (None, ()), name  # () for a repeatable option
        else:
            assert value == train_defaults[name] and type(value) is type(train_defaults[name]), name


def test_help_lists_the_registered_losses_and_optimizers_with_their_defaults(capsys, monkeypatch):
    params = {p.name: p for p in _command().params}
    assert params["loss"].metavar == "|".join(LOSSES) and params["optimizer"].metavar == "|".join(OPTIMIZERS)
    for spec in LOSSES.values():
        assert f"{spec.name}: {spec.help}" in params["loss"].help, spec.name
    for name in OPTIMIZERS:
        assert f"{name}: " in params["optimizer"].help, name
    assert "sgd: stochastic gradient descent (momentum 0.9)" in params["optimizer"].help
    assert "adadelta: Adadelta (rho 0.95, eps 1e-07)" in params["optimizer"].help
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    assert "|".join(LOSSES) in text and "|".join(OPTIMIZERS) in text
    for default in ("[default: 64]", "[default: 0,0.5]", "[default: crossentropy]", "[default: every-task]"):
        assert default in text, default
    # -e and -spe: the original's defaults depend on the number of tasks, so the help says both
    assert "(default 1000)" in text and "(default 50)" in text and "(default 20)" in text
    assert "[default: False]" not in text and "[default: None]" not in text


def test_importing_the_command_line_does_not_load_torch():
    code = "import sys, emonet.cli.app; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0, "`emonet --help` would wait for torch"


def test_the_command_lines_config_is_train_configs(tmp_path):
    ctx = _parse("-s", str(tmp_path / "st"), "-t", "arousal", "-ebp", str(tmp_path), "-N", "1", "-do", "0.1",
                 "-l", "ordinal", "--label-order", "low,mid,high", "-o", "adam", "-bs", "64", "-q")  # fmt: skip
    given = given_options(ctx)
    assert "quiet" in given and "batch_size" in given and "epochs" not in given, "a default typed out counts"
    given.pop("quiet")
    cfg = train_cli.train_config(given)
    assert cfg.model_given == ["dropout", "n_blocks"]
    assert (cfg.model.n_blocks, cfg.model.dropout, cfg.model.n_filters) == (1, (0.1, 0.1), 32)
    assert cfg.label_order == {"arousal": ["low", "mid", "high"]} and cfg.optimizer == "adam"
    assert cfg.epochs == 1000 and cfg.steps_per_epoch is None and cfg.stores == [str(tmp_path / "st")]
    by_hand = TrainConfig(
        stores=[str(tmp_path / "st")],
        tasks=["arousal"],
        experiments=str(tmp_path),
        model=ModelConfig(n_blocks=1, dropout=0.1),
        loss="ordinal",
        optimizer="adam",
        label_order={"arousal": ["low", "mid", "high"]},
        model_given=["dropout", "n_blocks"],
    )
    assert cfg == by_hand
    parsed = dict(given, label_order={"arousal": ["low", "mid", "high"]}, dropout=0.1)  # as a Python caller has them
    assert train_cli.train_config(parsed) == cfg


@pytest.mark.parametrize(
    "options, needles",
    [
        ({"tasks": ["a"], "experiments": "e"}, ["--store"]),
        ({"stores": ["s"], "tasks": ["a"], "experiments": "e", "resume": "r"}, ["resume", "emonet train --help"]),
        ({"stores": ["s"], "tasks": ["a"], "experiments": "e", "lr": 1}, ["lr", "not options"]),
        ({"stores": ["s"], "tasks": ["a"], "experiments": "e", "optimizer": "lbfgs"}, ["--optimizer", "sgd"]),
    ],
)
def test_train_config_refuses_what_is_not_a_runs_option(options, needles):
    with pytest.raises(ConfigError) as exc:
        train_cli.train_config(options)
    assert all(n in str(exc.value) for n in needles) and "\n" not in str(exc.value), exc.value
