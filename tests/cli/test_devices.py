"""The one --device / --precision vocabulary: every accepted and refused spelling, the torch
device each resolves to, one-line messages naming the option, and every command that
computes (train, evaluate, predict, extract) parsing and listing the same choices."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import typer

from emonet.cli.app import app, main
from emonet.errors import ConfigError
from emonet.utils import devices
from emonet.utils.devices import (
    DEVICE_CHOICES,
    PRECISION_CHOICES,
    PRECISIONS,
    check_device_name,
    check_precision,
    native_bf16_cpu,
    resolve_device,
    resolve_precision,
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
    assert [check_precision(p) for p in PRECISIONS] == ["fp32", "bf16", "fp16", "auto"]
    for bad in ("fp64", "half", "FP32", "", None):
        with pytest.raises(
            ConfigError, match=r"^--precision .* is not a precision; use one of fp32, bf16, fp16, auto$"
        ):
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
    with pytest.raises(ConfigError) as info:  # more ranks on this node than GPUs: how many to start
        resolve_device("cuda")
    assert str(info.value) == (
        "--device cuda: rank 5 of this node needs GPU 5, but this machine has 2 GPU(s): "
        "start at most 2 ranks per node (torchrun --nproc_per_node 2)"
    )


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
    assert option.metavar == PRECISION_CHOICES == "fp32|bf16|fp16|auto"
    assert [_parsed(command, "--precision", p) for p in PRECISIONS] == list(PRECISIONS)
    assert main([command, *REQUIRED[command], "--precision", "fp64"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'fp64' is not a precision; use one of fp32, bf16, fp16, auto" in err and len(err.splitlines()) == 1


ZEN3 = "flags\t\t: fpu sse2 avx avx2 fma f16c\n"
ZEN4 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw avx512_bf16\n"
SAPPHIRE = "flags\t\t: avx2 avx512f avx512_fp16 amx_bf16 amx_tile\n"
SKYLAKE = "flags\t\t: avx2 avx512f avx512bw avx512vl avx512dq\n"  # AVX-512 without bf16: emulated
ARM = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


@pytest.mark.parametrize(
    ("text", "native"), [(ZEN3, False), (ZEN4, True), (SAPPHIRE, True), (SKYLAKE, False), (ARM, True), ("", False)]
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, text, native):
    info = tmp_path / "cpuinfo"
    info.write_text(text)
    assert native_bf16_cpu(info) is native
    assert native_bf16_cpu(tmp_path / "missing") is False  # not Linux: no claim of native bf16


def test_native_bf16_of_this_cpu_agrees_with_proc_cpuinfo():
    info = Path("/proc/cpuinfo")
    if not info.is_file():
        pytest.skip("no /proc/cpuinfo")
    words = set(info.read_text().split())
    assert native_bf16_cpu() is bool(words & {"avx512_bf16", "amx_bf16", "bf16"})


def test_auto_precision_is_bf16_only_where_native_and_never_for_training():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if native_bf16_cpu() else "fp32")
    assert resolve_precision("auto", cpu, training=True) == "fp32"
    assert [resolve_precision(p, cpu) for p in ("fp32", "fp16")] == ["fp32", "fp16"]


def test_bf16_on_a_cpu_without_native_bf16_says_so_in_one_line_once(monkeypatch, capsys):
    monkeypatch.setattr(devices, "native_bf16_cpu", lambda *a: False)
    monkeypatch.setattr(devices, "_said", set())
    assert devices.resolve_precision("bf16", torch.device("cpu")) == "bf16"  # it runs: a warning, not a refusal
    assert devices.resolve_precision("bf16", torch.device("cpu")) == "bf16"
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "no native bf16" in err and "emulated" in err and "--precision fp32" in err
    monkeypatch.setattr(devices, "native_bf16_cpu", lambda *a: True)
    monkeypatch.setattr(devices, "_said", set())
    devices.resolve_precision("bf16", torch.device("cpu"))
    assert capsys.readouterr().err == ""
