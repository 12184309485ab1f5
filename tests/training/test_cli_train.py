"""`emonet train` from the command line: bad input is one line and a non-zero exit, nothing
written is lost; several stores; a killed run resumed to the same end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emonet.cli.app import main

pytestmark = pytest.mark.slow  # emonet train in subprocesses

TINY = ["-N", "1", "-nf", "4", "-bs", "8", "-w", "1.0", "-spe", "3", "-lr", "0.01", "--device", "cpu", "-q"]


def _run(capsys, *args):
    rc = main(["train", *map(str, args)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _one_line_error(rc, err, *needles):
    assert rc != 0
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_cli_trains_and_prints_a_results_table(small_store, tmp_path, capsys):
    rc, out, _ = _run(capsys, "--store", small_store, "-t", "arousal", "-ebp", tmp_path / "e", "-e", "1", *TINY)
    assert rc == 0
    assert "results of the best devel weights" in out and "arousal" in out and "UAR" in out
    (run,) = (tmp_path / "e").iterdir()
    assert json.loads((run / "results.json").read_text())["arousal"]["test"]["n"] == 4


def test_precision_auto_trains_in_fp32_and_the_config_says_so(small_store, tmp_path, capsys):
    """Training resolves --precision auto to fp32 (bf16 training's accuracy is unmeasured), and
    the run's config.yaml records the precision that ran, not 'auto'."""
    rc, _, err = _run(capsys, "--store", small_store, "-t", "arousal", "-ebp", tmp_path / "e", "-e", "1", *TINY,
                      "--precision", "auto")  # fmt: skip
    assert rc == 0 and "bf16" not in err
    (run,) = (tmp_path / "e").iterdir()
    config = (run / "config.yaml").read_text()
    assert "precision: fp32" in config and "precision: auto" not in config


def test_a_multi_task_runs_table_says_it_scored_the_final_weights(small_store, tmp_path, capsys):
    argv = ["--store", small_store, "-t", "acted", "arousal", "-ebp", tmp_path / "e", "-e", "1", *TINY]
    rc, out, _ = _run(capsys, *argv)
    assert rc == 0 and "results of the final weights" in out  # the original's multi-task procedure


@pytest.mark.parametrize(
    "args, needles",
    [
        (["-t", "nope"], ["'nope'", "acted, arousal, valence"]),
        (["-t", "arousal", "-m", "finetune"], ["--mode finetune", "-im"]),
        (["-t", "arousal", "-m", "adapters"], ["--mode adapters", "-im"]),
        (["-t", "arousal", "-o", "lbfgs"], ["--optimizer", "sgd"]),
        (["-t", "arousal", "-l", "ordinal", "--label-order", "low,mid"], ["--label-order", "high, low"]),
        (["-t", "arousal", "-w", "0"], ["--window"]),
        (["-t", "arousal", "--precision", "fp16", "--device", "cpu"], ["fp16"]),
    ],
)
def test_bad_options_are_one_line(small_store, tmp_path, capsys, args, needles):
    rc, _, err = _run(capsys, "--store", small_store, "-ebp", tmp_path / "e", "-e", "1", *TINY, *args)
    _one_line_error(rc, err, *needles)
    assert not list((tmp_path / "e").glob("*/*.safetensors"))


def test_ebp_that_is_a_file_is_refused(small_store, tmp_path, capsys):
    f = tmp_path / "runs.txt"
    f.write_text("keep me")
    rc, _, err = _run(capsys, "--store", small_store, "-t", "arousal", "-ebp", f, *TINY)
    _one_line_error(rc, err, "-ebp", "is a file")
    assert f.read_text() == "keep me"


def test_window_longer_than_every_clip_is_said_and_padded(small_store, tmp_path, capsys):
    rc, _, err = _run(
        capsys, "--store", small_store, "-t", "arousal", "-ebp", tmp_path, "-e", "1", *TINY[:-1], "-w", "60"
    )
    assert rc == 0
    assert "longer than every train clip" in err


def test_task_without_devel_partition(demo_corpus, tmp_path, capsys):
    store = tmp_path / "trainonly"
    tcsv = demo_corpus / "tasks" / "arousal" / "train.csv"
    args = ["extract", "-s", store, "-dp", demo_corpus / "data", "-t", "arousal", "-tr", tcsv, "-nm", "32", "-q"]
    assert main([str(a) for a in args]) == 0
    capsys.readouterr()
    rc, _, err = _run(capsys, "--store", store, "-t", "arousal", "-ebp", tmp_path / "e", *TINY)
    _one_line_error(rc, err, "no devel partition", "arousal")


def test_several_stores_and_a_store_with_other_features(demo_corpus, small_store, tmp_path, capsys):
    mts = demo_corpus / "multi-task-setup"
    other = tmp_path / "other"
    args = ["extract", "-s", other, "-dp", demo_corpus / "data", "-mts", mts, "--tasks", "valence", "-nm", "24", "-q"]
    assert main([str(a) for a in args]) == 0
    capsys.readouterr()
    rc, _, err = _run(
        capsys, "--store", small_store, "--store", other, "-t", "arousal", "valence", "-ebp", tmp_path, *TINY
    )
    _one_line_error(rc, err, str(small_store), str(other), "n_mels 32 vs 24")
    # the same features in two stores: each task is found in the store that holds it
    same = tmp_path / "same"
    args = ["extract", "-s", same, "-dp", demo_corpus / "data", "-mts", mts, "--tasks", "valence", "-nm", "32", "-q"]
    assert main([str(a) for a in args]) == 0
    capsys.readouterr()
    rc, out, err = _run(capsys, "--store", small_store, "--store", same, "-t", "acted", "-ebp", tmp_path / "e2",
                        "-e", "1", *TINY)  # fmt: skip
    assert rc == 0, err
    rc, out, err = _run(capsys, "-s", small_store, "-s", same, "-t", "valence", "-ebp", tmp_path / "e3", *TINY)
    _one_line_error(rc, err, "several stores", "valence")


def test_initial_model_trained_on_other_features_is_refused(demo_corpus, small_store, tmp_path, capsys):
    other = tmp_path / "other"
    mts = demo_corpus / "multi-task-setup"
    args = ["extract", "-s", other, "-dp", demo_corpus / "data", "-mts", mts, "--tasks", "arousal", "-nm", "24", "-q"]
    assert main([str(a) for a in args]) == 0
    assert main(["init-model", str(tmp_path / "m.safetensors"), "-s", str(other), "-N", "1", "-nf", "4"]) == 0
    capsys.readouterr()
    rc, _, err = _run(capsys, "-s", small_store, "-t", "valence", "-m", "adapters", "-im", tmp_path / "m.safetensors",
                      "-ebp", tmp_path / "e", *TINY)  # fmt: skip
    _one_line_error(rc, err, "other features", "n_mels 24 vs 32")


def test_initial_model_architecture_options_that_differ_are_refused(small_store, tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    assert main(["init-model", str(model), "-s", str(small_store), "-t", "acted", "-N", "1", "-nf", "4"]) == 0
    capsys.readouterr()
    base = ["-s", small_store, "-t", "valence", "-m", "adapters", "-im", model, "-ebp", tmp_path / "e"]
    rc, _, err = _run(capsys, *base, "-N", "1", "-nf", "8", "-bs", "8", "-w", "1.0", "-spe", "1", "-e", "1", "-q")
    _one_line_error(rc, err, "-nf/--number-of-filters 8 (initial model: 4)")
    assert not (tmp_path / "e").exists() or not any((tmp_path / "e").iterdir())
    rc, _, err = _run(capsys, *base, "-bs", "8", "-w", "1.0", "-spe", "1", "-e", "1", "-q")  # the model's own
    assert rc == 0, err


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-m", "emonet", "train", *map(str, args)], env


def test_resume_after_kill_9_ends_like_an_uninterrupted_run(small_store, tmp_path):
    common = ["-s", small_store, "-t", "acted", "arousal", "-e", "2", "-p", "20", *TINY[:-3], "-spe", "4"]
    cmd, env = _cli(*common, "-ebp", tmp_path / "full", "--device", "cpu", "-q")
    subprocess.run(cmd, env=env, check=True, timeout=120)
    cmd, env = _cli(*common, "-ebp", tmp_path / "killed", "--device", "cpu", "-q")
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.time() + 90
    state = None
    while time.time() < deadline and proc.poll() is None:
        runs = list((tmp_path / "killed").glob("*/state.pt"))
        if runs:
            state = runs[0]
            break
        time.sleep(0.02)
    assert state is not None, "the run must write its state after its first epoch"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run = state.parent
    assert not (run / "results.json").exists(), "killed before the end"
    refused = subprocess.run(_cli("--resume", run, "-e", "9", "-q")[0], env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "drop -e" not in refused.stderr and "--epochs" in refused.stderr
    cmd, env = _cli("--resume", run, "-q")
    subprocess.run(cmd, env=env, check=True, timeout=120)
    (full,) = (tmp_path / "full").iterdir()
    assert (run / "results.json").read_text() == (full / "results.json").read_text()
    assert (run / "metrics.csv").read_text() == (full / "metrics.csv").read_text()


def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_what_was_written(small_store, tmp_path):
    import resource

    def limit():  # files may not grow beyond 100 kB: the checkpoints fit, the resume state does not
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    cmd, env = _cli("-s", small_store, "-t", "arousal", "-ebp", tmp_path, "-e", "2", *TINY)
    done = subprocess.run(cmd, env=env, preexec_fn=limit, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr  # the README's exit code for filesystem errors
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "state.pt" in lines[0] and "writing failed" in lines[0] and "--resume" in lines[0]
    (run,) = tmp_path.iterdir()
    from emonet.models import load_checkpoint

    load_checkpoint(run / "best.safetensors")
    load_checkpoint(run / "last.safetensors")
    assert not [p for p in run.iterdir() if ".tmp-" in p.name], "no temporary file is left behind"


def test_ctrl_c_stops_and_says_how_to_resume(small_store, tmp_path):
    cmd, env = _cli("-s", small_store, "-t", "arousal", "-ebp", tmp_path, "-e", "200", *TINY)
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while time.time() < deadline and not list(tmp_path.glob("*/state.pt")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err and "emonet train --resume" in lines[0], err
    (run,) = tmp_path.iterdir()
    from emonet.models import load_checkpoint

    load_checkpoint(run / "last.safetensors")
