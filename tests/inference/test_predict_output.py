"""emonet predict's output: never an input, never replaced without --overwrite, checked before
any audio is decoded, one line for every filesystem failure, and after Ctrl-C the finished
predictions are kept (and said to be) where the message says."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from emonet.cli.app import main
from emonet.errors import CheckpointError, InputError
from emonet.inference.predict import Predictor
from emonet.models import ModelConfig, build_model, save_checkpoint
from tests.helpers import write_wav
from tests.mounts import fill, tmpfs

pytestmark = pytest.mark.slow  # emonet predict in subprocesses, signals and tmpfs mounts

FEATURES = {"sample_rate": 16000, "n_fft": 512, "hop_length": 256, "n_mels": 16, "f_min": 20.0, "f_max": 8000.0}
TASKS = {"a": ["x", "y"], "b": ["p", "q", "r"]}

# Runs the CLI with a pause before the second forward pass (after the first batch is done), so
# a test can act while one process is mid-prediction: fault injection that lives in the tests.
PAUSED_CLI = """
import os, sys, time
from pathlib import Path
from emonet.inference.predict import Predictor
_forward = Predictor._forward
calls = []
def forward(self, feats, tasks):
    calls.append(1)
    if len(calls) == 2:
        Path(os.environ["EMONET_TEST_PAUSED"]).touch()
        go = Path(os.environ["EMONET_TEST_GO"])
        for _ in range(1200):
            if go.exists():
                break
            time.sleep(0.05)
    return _forward(self, feats, tasks)
Predictor._forward = forward
from emonet.cli.app import main
sys.exit(main(sys.argv[1:]))
"""


def _model(nan: bool = False):
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_blocks=1, n_filters=4, n_mels=16), TASKS)
    if nan:
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))
    model.feature_config = dict(FEATURES)
    model.norm_stats = {t: {"mean": [0.0] * 16, "std": [1.0] * 16} for t in TASKS}
    return model.eval()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny model and six clips of different lengths."""
    root = tmp_path_factory.mktemp("predict-out")
    model = save_checkpoint(root / "model.safetensors", _model())
    for i in range(6):
        write_wav(root / "clips" / f"c{i}.wav", seconds=0.3 + 0.1 * i, freq=200 + 50 * i)
    return model, root / "clips"


def _bad_wav(folder: Path) -> Path:
    bad = folder / "bad.wav"
    bad.write_bytes(b"RIFF not really a wav")
    return bad


def _predict(*args) -> list[str]:
    return ["predict", *map(str, args)]


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def _leftovers(folder: Path, keep: set[str]) -> set[str]:
    return {p.name for p in folder.iterdir()} - keep


def test_output_never_replaces_an_input(tmp_path, setup, capsys):
    model, clips = setup
    csv_in = tmp_path / "list.csv"
    csv_in.write_text("file\n" + "".join(f"{p}\n" for p in sorted(clips.iterdir())))
    link = tmp_path / "hard-link.csv"
    os.link(csv_in, link)
    sym = tmp_path / "model-link.safetensors"
    sym.symlink_to(model)
    before = {p: p.read_bytes() for p in (model, csv_in, clips / "c0.wav")}
    for output, inputs in [
        (model, [clips]),  # its own --model
        (sym, [clips]),  # a symlink to the model
        (csv_in, [csv_in]),  # its input csv
        (link, [csv_in]),  # a hard link to it: the same file
        (clips / "c0.wav", [clips]),  # an audio file found in an input folder
        (clips / "c0.wav", [csv_in]),  # an audio file listed in an input csv
    ]:
        assert main(_predict("--model", model, *inputs, "-o", output, "--overwrite")) == 2
        err = _error(capsys)
        assert f"{output}: is also an input" in err and "--output" in err
    assert {p: p.read_bytes() for p in before} == before
    assert main(_predict("--model", model, clips, "-o", clips / "predictions.csv")) == 0  # beside inputs is fine


def test_existing_output_folder_or_missing_parent_is_refused_before_any_audio_is_decoded(tmp_path, setup, capsys):
    """A bad audio file among the inputs would stop the run when decoded: each refusal naming the
    output, not bad.wav, shows the output was checked first."""
    model, clips = setup
    bad = _bad_wav(tmp_path)
    old = tmp_path / "old.csv"
    old.write_text("keep me\n")
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "nowhere.csv")
    cases = [
        (old, 2, f"{old}: exists; choose another --output or pass --overwrite"),
        (dangling, 2, f"{dangling}: exists; choose another --output or pass --overwrite"),  # a link is there
        (tmp_path, 2, f"{tmp_path}: names a folder; --output needs a file name"),
        (f"{tmp_path / 'new'}/", 2, "new/: names a folder"),  # a trailing slash means a folder
        ("", 2, "--output is empty; name the file to write"),
        (tmp_path / "missing" / "p.csv", 1, f"{tmp_path / 'missing'}: no such folder; create it first"),
        (old / "p.csv", 1, f"{old}: is not a folder"),
    ]
    for output, code, message in cases:
        assert main(_predict("--model", model, clips, bad, "-o", output)) == code, output
        err = _error(capsys)
        assert message in err and "bad.wav" not in err, err
    assert old.read_text() == "keep me\n" and not (tmp_path / "new").exists()
    assert main(_predict("--model", model, clips, bad, "-o", old, "--overwrite")) == 2  # now it gets to decoding
    assert "bad.wav" in _error(capsys) and old.read_text() == "keep me\n"
    assert main(_predict("--model", model, clips, bad, "-o", old, "--overwrite", "--skip-bad")) == 0
    rows = list(csv.DictReader(old.open()))
    assert len(rows) == 6 * len(TASKS) and {r["task"] for r in rows} == set(TASKS)


def test_read_only_folder_is_one_line_before_decoding(tmp_path, setup, capsys):
    model, clips = setup
    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        assert main(_predict("--model", model, clips, _bad_wav(tmp_path), "-o", ro / "p.csv")) == 1
        err = _error(capsys)
        assert f"{ro / 'p.csv'}: read-only file system; choose another --output" in err and "probe" not in err


def test_full_disk_is_one_line_and_leaves_no_file_behind(tmp_path, setup):
    """A real CLI process on a full tmpfs: exit 1, one line, no partial or temporary file, and
    an older output replaced with --overwrite is intact."""
    model, clips = setup
    with tmpfs(tmp_path / "full") as disk:
        old = disk / "p.csv"
        old.write_text("older predictions\n")
        fill(disk)
        for extra in ([], ["--overwrite"]):
            target = disk / "new.csv" if not extra else old
            cmd = [sys.executable, "-m", "emonet", *_predict("--model", model, clips, "-o", target, *extra)]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            assert proc.returncode == 1, proc.stderr
            err = proc.stderr.strip()
            assert len(err.splitlines()) == 1 and "Traceback" not in err, err
            assert f"{target}: no space left on the device; nothing was written to {target}" in err
            assert _leftovers(disk, {"filler", "p.csv"}) == set()
        assert old.read_text() == "older predictions\n"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_one_line(tmp_path, setup, capsys):
    model, clips = setup
    for device in ("cuda", "cuda:1"):
        assert main(_predict("--model", model, clips, "--device", device, "-o", tmp_path / "p.csv")) == 2
        assert f"--device {device}: no CUDA GPU is visible on this machine; use --device cpu" in _error(capsys)
    assert not (tmp_path / "p.csv").exists()


def _start_paused(tmp_path: Path, args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "EMONET_TEST_PAUSED": str(tmp_path / "paused"), "EMONET_TEST_GO": str(tmp_path / "go")}
    proc = subprocess.Popen(
        [sys.executable, "-c", PAUSED_CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    t0 = time.monotonic()
    while not (tmp_path / "paused").exists() and proc.poll() is None and time.monotonic() - t0 < 240:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    return proc


def test_ctrl_c_keeps_the_finished_predictions_and_says_where(tmp_path, setup):
    """A real SIGINT after the first batch of two files: exit 130, the two files' predictions in
    OUT.partial (never under the output's own name, which would pass for complete), one line
    that says so, and no false promise to resume."""
    model, clips = setup
    out = tmp_path / "p.csv"
    (tmp_path / "p.csv.partial").write_text("an older partial file is kept\n")
    proc = _start_paused(tmp_path, _predict("--model", model, clips, "-bs", "2", "-o", out))
    proc.send_signal(signal.SIGINT)
    _stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    err = err.strip()
    partial = tmp_path / "p.csv.partial-2"
    assert err == (
        f"interrupted after 2 of 6 file(s): their predictions are in {partial} ({out} was not written); "
        "re-run the command for all files"
    )
    assert not out.exists() and (tmp_path / "p.csv.partial").read_text() == "an older partial file is kept\n"
    rows = list(csv.DictReader(partial.open()))
    assert [r["file"] for r in rows] == [str(clips / f"c{i}.wav") for i in (0, 0, 1, 1)]  # the two shortest
    assert [r["task"] for r in rows] == ["a", "b", "a", "b"] and all(r["predicted_label"] for r in rows)
    assert _leftovers(tmp_path, {"p.csv.partial", "p.csv.partial-2", "paused"}) == set()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_with_stdout_prints_what_was_predicted_and_says_it_is_partial(setup, monkeypatch, capsys, sig, code):
    model, clips = setup
    calls = []
    forward = Predictor._forward

    def forward_then_signal(self, feats, tasks):  # a real signal once the first batch is done
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), sig)
        return forward(self, feats, tasks)

    monkeypatch.setattr(Predictor, "_forward", forward_then_signal)
    assert main(_predict("--model", model, clips, "-bs", "3", "--task", "a")) == code
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 + 3
    assert captured.err.strip() == (
        "interrupted after 3 of 6 file(s): only their predictions were printed; re-run the command to predict all files"
    )


def test_two_processes_writing_the_same_output_keep_the_first_file(tmp_path, setup, capsys):
    """Both pass the check; the one that finishes second must not replace the other's file
    without --overwrite: it says so in one line and leaves no temporary file."""
    model, clips = setup
    out = tmp_path / "p.csv"
    slow = _start_paused(tmp_path, _predict("--model", model, clips, "-bs", "2", "-o", out))
    assert main(_predict("--model", model, clips, "--task", "a", "-o", out)) == 0  # the other process
    first = out.read_bytes()
    (tmp_path / "go").touch()
    _stdout, err = slow.communicate(timeout=240)
    assert slow.returncode == 2, err
    assert f"{out}: was created by another process while this command ran and is kept" in err
    assert "Traceback" not in err and out.read_bytes() == first
    assert _leftovers(tmp_path, {"p.csv", "paused", "go"}) == set()
    capsys.readouterr()


def test_audio_that_overflows_and_non_finite_outputs_are_never_labels(tmp_path, setup):
    """Float audio far outside -1..1 overflows the power spectrum into inf features, and broken
    weights give NaN probabilities: both used to be written as a label."""
    model, clips = setup
    loud = tmp_path / "loud.wav"
    sf.write(str(loud), np.full(8000, 1e30, np.float32), 16000, subtype="FLOAT")
    nan = tmp_path / "nan.wav"
    sf.write(str(nan), np.array([0.1, np.nan] * 4000, np.float32), 16000, subtype="FLOAT")
    predictor = Predictor(model)
    with pytest.raises(InputError, match="loud.wav: samples too large"):
        predictor.predict([clips / "c0.wav", loud])
    with pytest.raises(InputError, match=r"nan.wav: non-finite samples \(NaN or inf\) in the audio; fix or remove"):
        predictor.predict([nan])
    report = predictor.predict([loud, nan, clips / "c0.wav"], skip_bad=True)
    assert [s["file"] for s in report.skipped] == [str(loud), str(nan)]
    assert all(np.isfinite(list(p.probabilities.values())).all() for p in report.predictions)
    broken = save_checkpoint(tmp_path / "broken.safetensors", _model(nan=True))
    with pytest.raises(CheckpointError, match="non-finite outputs"):
        Predictor(broken).predict([clips / "c0.wav"])
