"""bench/gpu_check.sh, the one prepared run for the first GPU machine, exercised here without a
GPU: GPU minutes are scarce, so a typo in one of its steps must fail here, not there."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.sh"


def _run(tmp_path: Path, **env) -> subprocess.CompletedProcess:
    # no GPU, whatever the machine: CUDA_VISIBLE_DEVICES="" hides any
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "GPU_CHECK_PYTHON": sys.executable, "OUT": str(tmp_path), **env}
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=1500)


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_without_cuda_it_checks_its_wiring_says_so_in_one_line_and_exits_0(tmp_path):
    done = _run(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("gpu_check: no CUDA device here") and done.stdout.count("\n") == 1, done.stdout
    assert "steps are wired" in done.stdout


def test_a_bad_device_is_a_one_line_error(tmp_path):
    done = _run(tmp_path, GPU_CHECK_DEVICE="tpu")
    assert done.returncode != 0
    assert done.stderr.strip() == "gpu_check: GPU_CHECK_DEVICE must be cuda or cpu, got 'tpu'"


def test_the_wire_check_fails_on_a_command_line_emonet_rejects(gpu_check, monkeypatch, capsys):
    train_args = gpu_check.Check.train_args
    monkeypatch.setattr(
        gpu_check.Check, "train_args", lambda self, *a, **kw: [*train_args(self, *a, **kw), "--no-such-option"]
    )
    assert gpu_check.wire("cpu") == 1
    assert "does not parse" in capsys.readouterr().err


def test_results_and_predictions_are_compared_number_by_number(gpu_check, tmp_path):
    for name, uar in (("a", 0.5), ("b", 0.5), ("c", 0.625)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps({"acted": {"test": {"uar": uar, "n": 8}}}))
    same = gpu_check.diff_results(tmp_path / "a", tmp_path / "b")
    assert same == {"identical": True, "max_abs_diff": 0.0, "where": None}
    other = gpu_check.diff_results(tmp_path / "a", tmp_path / "c")
    assert not other["identical"] and other["max_abs_diff"] == 0.125 and other["where"] == "/acted/test/uar"
    a = [{"file": "x.wav", "prediction": "happy", "p_happy": "0.9"}]
    b = [{"file": "x.wav", "prediction": "happy", "p_happy": "0.875"}]
    c = [{"file": "x.wav", "prediction": "sad", "p_happy": "0.4"}]
    assert gpu_check.compare_predictions(a, b)["labels_equal"]
    assert gpu_check.compare_predictions(a, b)["max_abs_diff_numbers"] == pytest.approx(0.025)
    assert not gpu_check.compare_predictions(a, c)["labels_equal"]


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("EMONET_GPU_DRY_RUN") != "1",
    reason="the full CPU dry run of bench/gpu_check.sh takes minutes: opt in with EMONET_GPU_DRY_RUN=1",
)
def test_the_dry_run_runs_every_step_on_the_cpu(tmp_path):
    # the same steps as on a GPU, tiny, on the CPU: every figure lands in results.json and the table
    done = _run(tmp_path, GPU_CHECK_DEVICE="cpu")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    steps = results["steps"]
    assert list(steps) == ["facts", "extract", "train", "resume", "ddp", "throughput", "data_wait", "evaluate_predict"]
    assert all(s["ok"] for s in steps.values()), {k: s.get("error") for k, s in steps.items()}
    assert steps["extract"]["max_ulps"] == 0  # the same device twice
    assert steps["resume"]["vs_uninterrupted"]["identical"]  # on a CPU the same seed gives the same results
    same = steps["evaluate_predict"]
    assert same["evaluate"]["labels_equal"] and same["predict"]["labels_equal"]
    assert "gpu_check on cpu" in (tmp_path / "summary.txt").read_text()


@pytest.mark.parametrize(
    ("device", "override", "expected"),
    [("cuda", None, "nccl"), ("cpu", None, "gloo"), ("cuda", "gloo", "gloo")],
)
def test_the_process_group_backend_follows_the_device_unless_overridden(monkeypatch, device, override, expected):
    # the GPU check's two ranks on one GPU need gloo over CUDA tensors: nccl refuses them
    import torch
    import torch.distributed as dist

    from emonet.training import distributed

    chosen = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    if override:
        monkeypatch.setenv("EMONET_DIST_BACKEND", override)
    else:
        monkeypatch.delenv("EMONET_DIST_BACKEND", raising=False)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: chosen.append(backend))
    assert distributed.init(torch.device(device)) == (0, 2)
    assert chosen == [expected]
