"""Stages run registered commands through their Python functions: the pipeline imports no
CLI module, a stage's error reaches the caller with its type and exit code, and what a stage
made comes from what its function returned."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import typer

from emonet.cli.app import app, main
from emonet.cli.stages import command_context
from emonet.cli.train import given_config
from emonet.errors import StoreCorruptError
from emonet.pipeline import load_pipeline, run_pipeline
from emonet.pipeline.commands import stage_argv, stage_call, with_defaults
from emonet.pipeline.registry import stage_command
from emonet.pipeline.runner import StageFailed
from tests.pipeline.test_pipeline_rerun import TRAIN

ALONE = """
import sys
from emonet.errors import ConfigError
from emonet.pipeline import load_pipeline, run_pipeline
try:
    run_pipeline(load_pipeline(sys.argv[1]), dry_run=True)
except ConfigError as exc:
    print(exc)
print(sorted(m for m in sys.modules if m.startswith("emonet.cli")))
"""


def test_the_pipeline_imports_no_cli_module_and_says_what_is_missing(tmp_path):
    """A Python caller without the CLI: nothing of emonet.cli is imported, and a stage names
    a command nobody registered in one line saying how to register the emonet commands."""
    path = tmp_path / "p.yaml"
    path.write_text(f"workdir: {tmp_path / 'work'}\nstages:\n  check:\n    command: verify\n    args: [store]\n")
    done = subprocess.run([sys.executable, "-c", ALONE, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    refusal, modules = done.stdout.splitlines()
    assert modules == "[]"
    assert f"{path}: stage 'check': unknown command 'verify'" in refusal
    assert "register_stage_commands()" in refusal


def test_the_stage_commands_are_the_cli_s_own(tmp_path):
    train = stage_command("train")
    assert train.options["number-of-filters"].convert("8") == 8
    assert train.options["quiet"].flag and train.options["store"].multiple and train.options["store"].path
    with pytest.raises(ValueError, match="--number-of-filters"):
        train.options["number-of-filters"].convert("eight")
    assert stage_command("extract").options["device"].convert("CUDA:1") == "cuda:1"  # the CLI's own parser
    assert stage_command("run") is None  # a pipeline does not run pipelines


def _damaged_copy(store: Path, into: Path) -> Path:
    copy = into / "store"
    shutil.copytree(store, copy)
    chunk = next(p for p in sorted((copy / "acted" / "train" / "features").rglob("*")) if p.is_file())
    blob = bytearray(chunk.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    chunk.write_bytes(bytes(blob))
    return copy


def test_a_stage_s_error_reaches_the_caller_with_its_type_and_exit_code(tmp_path, demo_store, capsys):
    store = _damaged_copy(demo_store, tmp_path)
    path = tmp_path / "p.yaml"
    path.write_text(f"workdir: {tmp_path / 'work'}\nstages:\n  check:\n    command: verify\n    args: [{store}]\n")
    with pytest.raises(StageFailed) as failed:
        run_pipeline(load_pipeline(path), echo=lambda _line: None)
    assert isinstance(failed.value.__cause__, StoreCorruptError)
    assert failed.value.exit_code == StoreCorruptError.exit_code == 3 and failed.value.stage == "check"
    assert str(failed.value.__cause__) in str(failed.value)
    capsys.readouterr()
    assert main(["run", str(path)]) == 3  # the CLI exits with the stage's own code
    err = " ".join(capsys.readouterr().err.split())
    assert f"{path}: stage 'check' failed: {store}" in err and "Traceback" not in err


@pytest.mark.slow
def test_outputs_are_what_the_stage_returned_not_the_newest_folder(tmp_path, demo_store):
    """Another run folder, newer than the stage's own, in the stage's experiments folder: the
    pipeline records the run the stage trained, and the evaluation beside that run's model."""
    work = tmp_path / "work"
    decoy = work / "runs" / "train" / "zz-newer"
    decoy.mkdir(parents=True)
    (decoy / "config.yaml").write_text("tasks: [acted]\n")
    later = time.time_ns() + 3600 * 10**9
    os.utime(decoy, ns=(later, later))
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(TRAIN).format(workdir=work, store=demo_store))
    lines: list[str] = []
    results = run_pipeline(load_pipeline(path), echo=lines.append)
    run = work / "runs" / "train" / "r"
    assert results[0].outputs == {
        "run": str(run),
        "best": str(run / "best.safetensors"),
        "last": str(run / "last.safetensors"),
    }
    assert results[1].outputs == {"dir": str(run / "evaluate-test")}
    assert (run / "evaluate-test" / "results.json").is_file()
    assert f"--model {run / 'best.safetensors'}" in " ".join(lines)


def test_a_train_stage_s_config_is_the_command_line_s(tmp_path):
    """The same options as a stage and as a command line give the same TrainConfig, down to
    which model options count as given (they decide what an initial model may override)."""
    text = f"""
    workdir: {tmp_path / "work"}
    stages:
      train:
        command: train
        options:
          store: [a, b]
          tasks: [acted, valence]
          number-of-filters: 8
          dropout: 0
          classifier: FCNAttention
          window: 2
          balanced-weights: true
          quiet: true
    """
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text))
    pipeline = load_pipeline(path)
    stage = pipeline.stage("train")
    with_defaults(stage)
    call = stage_call(pipeline, stage, stage.options, stage.args, lambda ref: ref)
    command = typer.main.get_command(app).commands["train"]
    from_stage = given_config(command_context(command, "train", call))
    argv = stage_argv(stage, pipeline.workdir, lambda ref: ref)
    from_cli = given_config(command.make_context("emonet train", argv[1:]))
    assert from_stage == from_cli
    assert from_stage.model_given == ["classifier", "dropout", "n_filters"]
    assert stage_command("train").options["window"].convert("2") == from_stage.window == 2.0
