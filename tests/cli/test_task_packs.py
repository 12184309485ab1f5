"""emonet task export / attach: a task's own part of a model, shared as a pack."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from emonet.cli.app import main
from emonet.models import ModelConfig, build_model, load_checkpoint, save_checkpoint
from emonet.models.checkpoint import read_checkpoint_metadata

FEATURES = {"sample_rate": 16000, "n_fft": 512, "hop_length": 256, "n_mels": 16, "f_min": 20.0, "f_max": 8000.0}
TASKS = {"a": ["x", "y"], "b": ["p", "q", "r"], "c": ["lo", "mid", "hi"]}


def _model(seed: int):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(n_blocks=1, n_filters=4, n_mels=16), TASKS)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    model.feature_config = dict(FEATURES)
    model.norm_stats = {t: {"mean": [0.0] * 16, "std": [1.0 + i] * 16} for i, t in enumerate(TASKS)}
    return model.eval()


@pytest.fixture()
def full(tmp_path):
    return save_checkpoint(tmp_path / "full.safetensors", _model(0))


def test_export_then_attach_predicts_bit_for_bit(tmp_path, full, capsys):
    pack = tmp_path / "c.safetensors"
    assert main(["task", "export", str(full), "c", str(pack)]) == 0
    assert pack.stat().st_size < full.stat().st_size / 2
    assert read_checkpoint_metadata(pack)["norm_stats"] == {"mean": [0.0] * 16, "std": [3.0] * 16}
    base = _model(0)
    base.remove_task("c")
    base_path = save_checkpoint(tmp_path / "base.safetensors", base)
    out = tmp_path / "attached.safetensors"
    assert main(["task", "attach", str(base_path), str(pack), "-o", str(out)]) == 0
    original, _ = load_checkpoint(full)
    attached, meta = load_checkpoint(out)
    assert list(attached.tasks) == ["a", "b", "c"] and attached.tasks["c"] == TASKS["c"]
    assert meta["norm_stats"]["c"]["std"][0] == 3.0 and meta["feature_config"] == FEATURES
    x, lengths = torch.randn(3, 40, 16), torch.tensor([40, 23, 9])
    with torch.no_grad():
        assert torch.equal(original(x, lengths, "c"), attached(x, lengths, "c"))
    assert main(["info", str(pack)]) == 0
    assert "c" in capsys.readouterr().out


def test_attach_refuses_foreign_backbones_existing_names_and_models(tmp_path, full, capsys):
    pack = tmp_path / "c.safetensors"
    assert main(["task", "export", str(full), "c", str(pack)]) == 0
    other = save_checkpoint(tmp_path / "other.safetensors", _model(1))  # other shared weights
    capsys.readouterr()
    out = tmp_path / "out.safetensors"
    assert main(["task", "attach", str(other), str(pack), "-o", str(out), "--replace"]) == 2
    assert "different backbone" in capsys.readouterr().err and not out.exists()
    assert main(["task", "attach", str(full), str(pack), "-o", str(out)]) == 2
    assert "already has a task named 'c'; pass --replace" in capsys.readouterr().err
    assert main(["task", "attach", str(full), str(pack), "-o", str(out), "--replace"]) == 0
    assert main(["task", "attach", str(full), str(full), "-o", str(tmp_path / "x.safetensors")]) == 2
    assert "not a task file" in capsys.readouterr().err
    assert main(["task", "export", str(full), "nope", str(tmp_path / "n.safetensors")]) == 2
    assert "it has: a, b, c" in capsys.readouterr().err
    assert main(["predict", "--model", str(pack), str(tmp_path)]) == 2  # a pack is not a model
    err = capsys.readouterr().err
    assert "a task pack (task 'c'), not a model" in err and "Traceback" not in err


def test_attach_refuses_other_features(tmp_path, full, capsys):
    pack = tmp_path / "c.safetensors"
    assert main(["task", "export", str(full), "c", str(pack)]) == 0
    base = _model(0)
    base.remove_task("c")
    base.feature_config = {**FEATURES, "n_fft": 1024}
    base_path = save_checkpoint(tmp_path / "base.safetensors", base)
    capsys.readouterr()
    assert main(["task", "attach", str(base_path), str(pack), "-o", str(tmp_path / "o.safetensors")]) == 2
    assert "n_fft" in capsys.readouterr().err


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_missing_files_and_outputs_that_are_inputs_are_one_line(tmp_path, full, capsys):
    pack = tmp_path / "c.safetensors"
    assert main(["task", "export", str(full), "c", str(pack)]) == 0
    capsys.readouterr()
    before = {p: p.read_bytes() for p in (full, pack)}
    missing = tmp_path / "nope.safetensors"
    for args, code, message in [
        (["export", str(missing), "c", str(tmp_path / "n.safetensors")], 2, f"CKPT {missing}: no such checkpoint file"),
        (["export", str(full), "c", str(full), "--overwrite"], 2, f"{full}: is also an input"),
        (["export", str(full), "c", str(pack)], 2, f"{pack}: exists; choose another PACK or pass --overwrite"),
        (["export", str(full), "c", str(tmp_path / "no" / "c.safetensors")], 1, f"{tmp_path / 'no'}: no such folder"),
        (["export", str(full), "c", str(tmp_path)], 2, f"{tmp_path}: names a folder"),
        (["attach", str(full), str(missing), "-o", str(tmp_path / "o.safetensors")], 2, "check the PACK path"),
        (
            ["attach", str(tmp_path), str(pack), "-o", str(tmp_path / "o.safetensors")],
            2,
            f"CKPT {tmp_path}: is a folder",
        ),
        (["attach", str(full), str(pack), "-o", str(pack), "--replace", "--overwrite"], 2, f"{pack}: is also an input"),
        (["attach", str(full), str(pack), "-o", str(full), "--replace", "--overwrite"], 2, f"{full}: is also an input"),
    ]:
        assert main(["task", *args]) == code, args
        assert message in _one_line(capsys), args
    assert {p: p.read_bytes() for p in before} == before and not (tmp_path / "no").exists()
    assert not (tmp_path / "n.safetensors").exists() and not (tmp_path / "o.safetensors").exists()
    # messages name commands, never the Python functions behind them
    assert main(["predict", "--model", str(pack), str(tmp_path)]) == 2
    err = _one_line(capsys)
    assert "attach it to its model with 'emonet task attach MODEL c.safetensors" in err and "attach_task" not in err
    assert main(["task", "attach", str(full), str(full), "-o", str(tmp_path / "x.safetensors")]) == 2
    err = _one_line(capsys)
    assert "write one with 'emonet task export'" in err and "export_task" not in err


@pytest.mark.slow
def test_read_only_and_full_targets_are_one_line_and_leave_nothing(tmp_path, full, capsys):
    from tests.mounts import fill, tmpfs

    pack = tmp_path / "c.safetensors"
    assert main(["task", "export", str(full), "c", str(pack)]) == 0
    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        assert main(["task", "export", str(full), "c", str(ro / "c.safetensors")]) == 1
        assert f"{ro / 'c.safetensors'}: read-only file system; choose another PACK" in _one_line(capsys)
        assert main(["task", "attach", str(full), str(pack), "--replace", "-o", str(ro / "o.safetensors")]) == 1
        assert f"{ro / 'o.safetensors'}: read-only file system; choose another --output" in _one_line(capsys)
    with tmpfs(tmp_path / "full") as disk:
        fill(disk)
        out = disk / "o.safetensors"
        assert main(["task", "attach", str(full), str(pack), "--replace", "-o", str(out)]) == 1
        assert f"{out}: no space left on the device; nothing was written" in _one_line(capsys)
        cmd = [sys.executable, "-m", "emonet", "task", "export", str(full), "c", str(disk / "c.safetensors")]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)  # the real CLI's code and stderr
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert f"{disk / 'c.safetensors'}: no space left on the device" in proc.stderr
        assert {p.name for p in disk.iterdir()} == {"filler"}  # no partial pack, no temporary file


def test_a_pack_whose_task_name_is_a_path_is_refused(tmp_path, full, capsys):
    """A task name becomes file names later (plots, predictions): '../evil' from a pack must not get in."""
    from emonet.models.checkpoint import load_tensors, write_checkpoint

    pack = tmp_path / "c.safetensors"
    assert main(["task", "export", str(full), "c", str(pack)]) == 0
    meta = read_checkpoint_metadata(pack)
    tensors = {k.replace(".c.", ".x.", 1): v for k, v in load_tensors(pack, meta).items()}
    meta = {**meta, "task": "../evil", "tasks": [{"name": "../evil", "classes": TASKS["c"]}]}
    evil = tmp_path / "evil.safetensors"
    write_checkpoint(evil, tensors, meta)
    capsys.readouterr()
    out = tmp_path / "o.safetensors"
    assert main(["task", "attach", str(full), str(evil), "-o", str(out)]) == 2
    err = _one_line(capsys)
    assert f"{evil}: invalid task name '../evil'" in err and "cannot be attached" in err and not out.exists()
