"""The one --device / --precision vocabulary: every accepted and refused spelling, the torch
device each resolves to, one-line messages naming the option, and every command that
computes (train, evaluate, predict, extract) parsing and listing the same choices."""

from __future__ import annotations

import pytest
import torch
import typer

from emonet.cli.app import app, main
from emonet.errors import ConfigError
from emonet.utils.devices import (
    DEVICE_CHOICES,
    PRECISION_CHOICES,
    PRECISIONS,
    check_device_name,
    check_precision,
    resolve_device,
)

COMMANDS = ("train", "evaluate", "predict", "extract")
ACCEPTED = {"auto": "auto", "cpu": "cpu", "cuda": "cuda", "cuda:0": "cuda:0", "cuda:12": "cuda:12"}
ACCEPTED |= {"CPU": "cpu", " Cuda:1 ": "cuda:1", "AUTO": "auto"}
REFUSED = ["gpu", "tpu", "mps", "cuda:", "cuda:-1", "cuda:x", "cuda:1:2", "cpu:0", "cuda 0", "", None]


@pytest.mark.parametrize(("given", "name"), list(ACCEPTED.items()))
def test_every_accepted_device_spelling(given, name):
    assert check_device_name(given) == name


@pytest.mark.parametrize("given", REFUSED)
def test_every_refused_device_spelling_is_one_line_naming_the_option(given):
    with pytest.raises(ConfigError) as info:
        check_device_name(given, option="--device")
    text = str(info.value)
    assert text.startswith(f"--device {given!r} is not a device") and len(text.splitlines()) == 1
    assert "'auto', 'cpu', 'cuda', 'cuda:N'" in text


def test_precisions():
    assert [check_precision(p) for p in PRECISIONS] == ["fp32", "bf16", "fp16"]
    for bad in ("fp64", "half", "FP32", "", None):
        with pytest.raises(ConfigError, match=r"^--precision .* is not a precision; use one of fp32, bf16, fp16$"):
            check_precision(bad)


def _no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def _two_gpus(monkeypatch, chosen: list):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)


def test_resolve_device_without_a_gpu(monkeypatch):
    _no_gpu(monkeypatch)
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device("auto") == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ConfigError) as info:
            resolve_device(name, option="--device")
        assert str(info.value) == f"--device {name}: no CUDA GPU is visible on this machine; use --device cpu"
    with pytest.raises(ConfigError, match="^--device 'gpu' is not a device"):
        resolve_device("gpu")


def test_resolve_device_takes_this_ranks_gpu_under_torchrun(monkeypatch):
    chosen: list = []
    _two_gpus(monkeypatch, chosen)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("cuda") == torch.device("cuda", 1) and resolve_device("auto") == torch.device("cuda", 1)
    assert chosen == [0, 1, 1]  # made the current device, as data-parallel training needs
    assert resolve_device("cuda:0") == torch.device("cuda", 0) and chosen == [0, 1, 1]  # named: not made current
    with pytest.raises(ConfigError, match=r"^--device cuda:2: this machine has 2 GPU\(s\) \(cuda:0 to cuda:1\)$"):
        resolve_device("cuda:2")
    monkeypatch.setenv("LOCAL_RANK", "5")
    with pytest.raises(ConfigError, match="^--device cuda: this machine has 2 GPU"):
        resolve_device("cuda")


REQUIRED = {"train": ["-s", "s", "-t", "a"], "evaluate": ["--model", "m", "-s", "s"]}
REQUIRED |= {"predict": ["--model", "m", "x.wav"], "extract": ["-s", "s", "-dp", "d"]}


def _option(command: str, name: str):
    cmd = typer.main.get_command(app).commands[command]
    return next(p for p in cmd.params if name in getattr(p, "opts", []))


def _parsed(command: str, option: str, given: str):
    cmd = typer.main.get_command(app).commands[command]
    return cmd.make_context(command, [*REQUIRED[command], option, given]).params[option.lstrip("-")]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_lists_and_parses_the_same_devices(command, capsys):
    option = _option(command, "--device")
    assert option.metavar == DEVICE_CHOICES == "auto|cpu|cuda|cuda:N"
    assert all(_parsed(command, "--device", given) == name for given, name in ACCEPTED.items())
    assert main([command, *REQUIRED[command], "--device", "gpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'gpu' is not a device; use one of 'auto', 'cpu', 'cuda', 'cuda:N'" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("command", ["train", "evaluate", "predict"])
def test_every_command_that_runs_a_network_takes_the_same_precisions(command, capsys):
    option = _option(command, "--precision")
    assert option.metavar == PRECISION_CHOICES == "fp32|bf16|fp16"
    assert [_parsed(command, "--precision", p) for p in PRECISIONS] == list(PRECISIONS)
    assert main([command, *REQUIRED[command], "--precision", "fp64"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'fp64' is not a precision; use one of fp32, bf16, fp16" in err and len(err.splitlines()) == 1
