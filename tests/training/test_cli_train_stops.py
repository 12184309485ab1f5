"""`emonet train` stops in one line with the README's exit codes and loses nothing: bad numbers
and names before any folder is made, read-only and full file systems, SIGTERM, options given
with --resume, a second writer of the same run, temporary files of killed writers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emonet.cli.app import main
from emonet.models import ModelConfig
from emonet.training import TrainConfig, train
from emonet.training.progress import Progress
from emonet.training.trainer import TrainingInterrupted
from tests.helpers import tree_digest
from tests.mounts import tmpfs

pytestmark = pytest.mark.slow  # emonet train in subprocesses, signals and tmpfs mounts

TINY = ["-N", "1", "-nf", "4", "-do", "0", "-bs", "8", "-w", "1.0", "-spe", "2", "-lr", "0.01", "--device", "cpu", "-q"]


def _one_line(capsys, rc, code, *needles) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == code and len(lines) == 1 and "Traceback" not in err, (rc, err)
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


class _StopAfterFirstEpoch(Progress):
    def epoch(self, summary) -> None:
        raise KeyboardInterrupt


def _interrupted_run(store: Path, exps: Path) -> Path:
    """A real run stopped (as by Ctrl-C) after its first epoch: resumable."""
    cfg = TrainConfig(stores=[str(store)], tasks=["arousal"], experiments=str(exps), batch_size=8, window=1.0,
                      epochs=2, steps_per_epoch=2, learning_rate=0.01, device="cpu",
                      model=ModelConfig(n_blocks=1, n_filters=4, dropout=0.0))  # fmt: skip
    with pytest.raises(TrainingInterrupted):
        train(cfg, progress=_StopAfterFirstEpoch())
    (run,) = exps.iterdir()
    return run


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-m", "emonet", "train", *map(str, args)], env


@pytest.mark.parametrize(
    "args, needles",
    [
        (["-w", "inf"], ["--window/-w", "inf"]),
        (["-w", "nan"], ["--window/-w", "nan"]),
        (["-w", "0"], ["--window/-w"]),
        (["-w", "-1"], ["--window/-w"]),
        (["-w", "1e308"], ["--window/-w", "at most"]),
        (["-lr", "inf"], ["--learning-rate", "finite"]),
        (["-lr", "nan"], ["--learning-rate"]),
        (["-l", "focal", "--focal-gamma", "inf"], ["--focal-gamma", "finite"]),
        (["-l", "focal", "--focal-alpha", "nan"], ["--focal-alpha"]),
        (["--seed", "-1"], ["--seed", "from 0 to"]),
        (["--seed", str(2**64)], ["--seed", "from 0 to"]),
        (["--run-name", "../escape"], ["--run-name", "not a path"]),
        (["--run-name", "/tmp/abs"], ["--run-name"]),
        (["--run-name", "a/b"], ["--run-name"]),
        (["--run-name", ".hidden"], ["--run-name"]),
        (["--run-name", "x" * 101], ["--run-name", "100"]),
    ],
)
def test_bad_numbers_and_names_are_refused_before_any_folder(small_store, tmp_path, capsys, args, needles):
    rc = main(["train", "-s", str(small_store), "-t", "arousal", "-ebp", str(tmp_path / "e"), "-e", "1", *TINY, *args])
    _one_line(capsys, rc, 2, *needles)
    assert not (tmp_path / "e").exists(), "nothing is created for a refused command"
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "nothing written outside -ebp either"


def test_the_largest_seed_torch_takes_is_accepted(small_store, tmp_path, capsys):
    rc = main(["train", "-s", str(small_store), "-t", "arousal", "-ebp", str(tmp_path), "-e", "1", *TINY,
               "--seed", str(2**64 - 1)])  # fmt: skip
    assert rc == 0, capsys.readouterr().err


@pytest.mark.parametrize("option", [["-e", "1000"], ["--seed", "0"], ["-bs", "64"], ["--device", "auto"], ["-j", "0"]])
def test_options_given_with_resume_are_refused_even_at_their_defaults(small_store, tmp_path, capsys, option):
    run = _interrupted_run(small_store, tmp_path / "e")
    before = tree_digest(run)
    capsys.readouterr()
    rc = main(["train", "--resume", str(run), *option, "-q"])
    long = {"-e": "--epochs", "-bs": "--batch-size", "-j": "--workers"}.get(option[0], option[0])
    _one_line(capsys, rc, 2, "--resume", f"drop {long}", "config.yaml")
    assert tree_digest(run) == before


def test_ebp_on_a_read_only_file_system(small_store, tmp_path, capsys):
    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        for ebp in (ro, ro / "runs"):
            rc = main(["train", "-s", str(small_store), "-t", "arousal", "-ebp", str(ebp), "-e", "1", *TINY])
            _one_line(capsys, rc, 1, str(ebp), "read-only file system", "-ebp")
        assert list(ro.iterdir()) == []


def test_resume_on_a_read_only_file_system_is_one_line_and_changes_nothing(small_store, tmp_path, capsys):
    with tmpfs(tmp_path / "fs", size="8m") as fs:
        run = _interrupted_run(small_store, fs / "e")
        before = tree_digest(run)
        subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
        capsys.readouterr()
        rc = main(["train", "--resume", str(run), "-q"])
        _one_line(capsys, rc, 1, str(run), "read-only file system", "--resume")
        assert tree_digest(run) == before


def test_a_full_disk_exits_1_in_one_line_and_leaves_no_temporary_file(small_store, tmp_path):
    with tmpfs(tmp_path / "full", size="256k") as full:
        cmd, env = _cli("-s", small_store, "-t", "acted", "arousal", "-ebp", full, "-e", "20", *TINY)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        lines = [x for x in done.stderr.splitlines() if x.strip()]
        assert done.returncode == 1 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert "no space left on the device" in lines[0]
        assert not [p for p in full.rglob("*") if ".tmp-" in p.name], "no temporary file is left behind"
        for run in full.iterdir():  # a run folder exists only with its config
            assert (run / "config.yaml").is_file() and (run / "data.json").is_file()


def test_sigterm_exits_143_with_its_own_words(small_store, tmp_path):
    cmd, env = _cli("-s", small_store, "-t", "arousal", "-ebp", tmp_path, "-e", "200", *TINY)
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("*/state.pt")):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGTERM)  # as a job scheduler stops a job: the whole process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "SIGTERM" in lines[0] and "Ctrl-C" not in lines[0] and "emonet train --resume" in lines[0]
    (run,) = tmp_path.iterdir()
    assert (run / "state.pt").is_file() and not (run / "results.json").exists()


def test_a_second_writer_of_a_run_is_refused_and_stale_temp_files_are_cleaned(small_store, tmp_path, capsys):
    from emonet.training.run_dir import lock_run

    run = _interrupted_run(small_store, tmp_path / "e")
    held = lock_run(run)  # what a running `emonet train --resume` of this run holds
    try:
        before = tree_digest(run)
        capsys.readouterr()
        rc = main(["train", "--resume", str(run), "-q"])
        _one_line(capsys, rc, 2, str(run), "another emonet train is running")
        assert tree_digest(run) == before
    finally:
        held.close()
    dead = subprocess.Popen(["true"])
    dead.wait()  # a writer that is gone (as after kill -9)
    stale = [run / f".state.pt.tmp-{dead.pid}", run / "plots" / f".learning_curves.png.tmp-{dead.pid}"]
    live = run / f".metrics.csv.tmp-{os.getpid()}"  # a live process's temp file is never touched
    (run / "plots").mkdir(exist_ok=True)
    for p in (*stale, live):
        p.write_bytes(b"half")
    cmd, env = _cli("--resume", run, "-q")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not any(p.exists() for p in stale) and live.is_file()
    assert (run / "results.json").is_file()
