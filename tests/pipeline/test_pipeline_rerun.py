"""Re-runs of emonet run: a stopped train stage (Ctrl-C, SIGTERM, kill -9 of the whole
`emonet run`) continues its own run folder on the next run and ends where an uninterrupted
run ends; an edit of a file a stage reads through another stage's output re-runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from emonet.pipeline import load_pipeline, run_pipeline
from tests.pipeline.test_pipeline import PIPELINE

pytestmark = pytest.mark.slow  # real pipelines stopped by signals and run again

TRAIN = """
workdir: {workdir}
stages:
  train:
    command: train
    options:
      store: {store}
      tasks: [acted]
      number-of-resnet-blocks: 1
      number-of-filters: 4
      dropout: "0"
      window: 1.0
      batch-size: 8
      steps-per-epoch: 4
      learning-rate: 0.02
      epochs: 3
      patience: 10
      run-name: r
      quiet: true
  score:
    command: evaluate
    options:
      model: ${{train.best}}
      store: {store}
      tasks: [acted]
"""

# `emonet run` with a pause after each epoch's metrics are written: fault injection that lives
# in the test. It gives the signal a moment in which one epoch is finished and more are to come.
SLOW_RUN = """
import sys, time
from emonet.training import run_dir
_write = run_dir.write_metrics
def write_metrics(run, rows):
    _write(run, rows)
    time.sleep(3)
run_dir.write_metrics = write_metrics
from emonet.cli.app import main
sys.exit(main(sys.argv[1:]))
"""


def _train_pipeline(tmp_path: Path, store: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(TRAIN).format(workdir=tmp_path / name, store=store))
    return path


def _outcome(run: Path) -> tuple[str, dict]:
    """What must not depend on a stop and a resume: the per-epoch metrics and the results."""
    results = json.loads((run / "results.json").read_text())
    return (run / "metrics.csv").read_text(), results


@pytest.fixture(scope="module")
def uninterrupted(demo_store, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uninterrupted")
    results = run_pipeline(load_pipeline(_train_pipeline(tmp, demo_store, "whole")), echo=lambda _line: None)
    assert [r.status for r in results] == ["ran", "ran"]
    return _outcome(tmp / "whole" / "runs" / "train" / "r")


def _stop_mid_train(path: Path, workdir: Path, sig: int) -> subprocess.CompletedProcess:
    """Starts `emonet run` in its own process group and sends ``sig`` to the group once the
    first epoch is written."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_RUN, "run", str(path)],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = workdir / "runs" / "train" / "r" / "metrics.csv"
    deadline = time.monotonic() + 300
    while not metrics.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "sigterm", "kill-9"])
def test_a_stopped_train_stage_resumes_its_run(tmp_path, demo_store, uninterrupted, sig):
    path = _train_pipeline(tmp_path, demo_store, "work")
    workdir = tmp_path / "work"
    stopped = _stop_mid_train(path, workdir, sig)
    run = workdir / "runs" / "train" / "r"
    assert (run / "state.pt").is_file() and not (run / "results.json").exists()
    if sig == signal.SIGKILL:
        assert stopped.returncode == -signal.SIGKILL
    else:
        # 130 after SIGTERM too while the trainer reports every stop as Ctrl-C (TrainingInterrupted)
        assert stopped.returncode in (130, 128 + sig), stopped.stderr
        err = " ".join(stopped.stderr.split())
        assert "stage 'train' was stopped; re-run the pipeline and its run" in err and "Traceback" not in err
    again = subprocess.run([sys.executable, "-m", "emonet", "run", str(path)], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"emonet train --resume {run}" in " ".join(again.stderr.split())
    assert sorted(p.name for p in (workdir / "runs" / "train").iterdir()) == ["r"]  # one run folder, no r-2
    assert _outcome(run) == uninterrupted
    assert (run / "evaluate-test" / "results.json").is_file()
    third = subprocess.run([sys.executable, "-m", "emonet", "run", str(path)], capture_output=True, text=True)
    assert third.returncode == 0 and third.stderr.count("up to date, skipped") == 2, third.stderr


def test_edits_of_inputs_reached_through_other_stages_are_seen(tmp_path):
    path = tmp_path / "p.yaml"
    text = PIPELINE.replace("      quiet: true\n", "      quiet: true\n      overwrite: true\n", 1)
    path.write_text(textwrap.dedent(text).format(workdir=tmp_path / "work"))
    quiet = {"echo": lambda _line: None}
    assert [r.status for r in run_pipeline(load_pipeline(path), **quiet)] == ["ran"] * 3
    # a csv that extract reads as ${corpus.dir}/multi-task-setup/...: rows reordered
    csv = tmp_path / "work" / "corpus" / "multi-task-setup" / "acted" / "train.csv"
    head, *rows = csv.read_text().splitlines()
    csv.write_text("\n".join([head, *reversed(rows)]) + "\n")
    again = run_pipeline(load_pipeline(path), **quiet)
    assert [(r.status, r.reason) for r in again][:2] == [("skipped", "up to date"), ("ran", "its input files changed")]
    assert again[2].status == "ran"  # its store changed too
    # a file of the store that init-model reads as ${features.store}
    store_file = next(p for p in sorted((tmp_path / "work" / "features").rglob("*")) if p.is_file())
    os.utime(store_file, ns=(time.time_ns(), time.time_ns() + 10**9))
    third = run_pipeline(load_pipeline(path), **quiet)
    assert [(r.status, r.reason) for r in third] == [
        ("skipped", "up to date"),
        ("skipped", "up to date"),
        ("ran", "its input files changed"),
    ]
    assert [r.status for r in run_pipeline(load_pipeline(path), **quiet)] == ["skipped"] * 3
