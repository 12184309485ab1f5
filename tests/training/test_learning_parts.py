"""Losses, class weights, weight decay, the schedule and atomic writes, against hand-computed
cases and a real full file system limit."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from emonet.errors import ConfigError
from emonet.training.losses import TaskLoss, balanced_class_weights, label_ranks, ordinal_targets
from emonet.training.optim import OPTIMIZERS, build_optimizer, individual_weight_decay
from emonet.training.schedule import Schedule


def test_cross_entropy_and_class_weights_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1, 0])
    p = torch.softmax(logits, 1)
    nll = -torch.log(p[torch.arange(3), labels])
    assert TaskLoss("crossentropy", 2)(logits, labels) == pytest.approx(float(nll.mean()))
    w = balanced_class_weights(np.array([0, 0, 0, 1]), 2)
    assert w.tolist() == pytest.approx([4 / (2 * 3), 4 / (2 * 1)])
    # the original's: sum(w l) / batch size
    weighted = TaskLoss("crossentropy", 2, w)(logits, labels)
    expect = (w[0] * nll[0] + w[1] * nll[1] + w[0] * nll[2]) / 3
    assert float(weighted) == pytest.approx(float(expect), rel=1e-5)
    # --class-weighted-mean: divided by the sum of the weights, as F.cross_entropy does
    weighted = TaskLoss("crossentropy", 2, w, weighted_mean=True)(logits, labels)
    expect = (w[0] * nll[0] + w[1] * nll[1] + w[0] * nll[2]) / (w[0] + w[1] + w[0])
    assert float(weighted) == pytest.approx(float(expect), rel=1e-5)
    assert float(weighted) == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits, labels, weight=torch.tensor(w))), rel=1e-5
    )


def test_focal_loss_by_hand():
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.5, 0.0]])
    labels = torch.tensor([0, 2])
    pt = torch.softmax(logits, 1)[torch.arange(2), labels]
    expect = (-0.25 * (1 - pt) ** 2 * torch.log(pt)).mean()
    assert float(TaskLoss("focal", 3)(logits, labels)) == pytest.approx(float(expect), rel=1e-6)
    g0 = TaskLoss("focal", 3, gamma=0.0, alpha=1.0)(logits, labels)
    assert float(g0) == pytest.approx(float(TaskLoss("crossentropy", 3)(logits, labels)), rel=1e-6)


def test_ordinal_soft_targets_and_label_order():
    q = ordinal_targets(torch.tensor([0]), torch.tensor([0.0, 1.0, 2.0]))[0]
    e = np.exp([0.0, -1.0, -2.0])
    assert q.tolist() == pytest.approx((e / e.sum()).tolist(), rel=1e-6)
    # classes in label-map order; the order 'low, mid, high' puts 'mid' between them
    ranks = label_ranks(["high", "low", "mid"], ["low", "mid", "high"])
    assert ranks == [2.0, 0.0, 1.0]
    with pytest.raises(ConfigError, match="each class exactly once"):
        label_ranks(["high", "low", "mid"], ["low", "high"])
    logits = torch.tensor([[0.1, 2.0, 0.3]])
    loss = TaskLoss("ordinal", 3, ranks=ranks)(logits, torch.tensor([1]))
    tq = ordinal_targets(torch.tensor([1]), torch.tensor(ranks))
    assert float(loss) == pytest.approx(float(-(tq * torch.log_softmax(logits, 1)).sum()), rel=1e-6)


def test_individual_weight_decay_table():
    assert [individual_weight_decay(n) for n in (10000, 9999, 1000, 999, 500, 499, 10)] == [
        1e-6, 5e-4, 5e-4, 2e-3, 2e-3, 5e-3, 5e-3,
    ]  # fmt: skip


def test_optimisers_build_with_named_groups():
    p1, p2 = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))
    for name in OPTIMIZERS:
        opt = build_optimizer(name, [{"name": "shared", "params": [p1]}, {"name": "task:a", "params": [p2]}], 0.1)
        assert [g["name"] for g in opt.param_groups] == ["shared", "task:a"]
    assert build_optimizer("sgd", [{"params": [p1]}], 0.1).param_groups[0]["momentum"] == 0.9
    with pytest.raises(ConfigError, match="sgd"):
        build_optimizer("lbfgs", [{"params": [p1]}], 0.1)


def test_schedule_three_stages_with_patience_and_min_delta():
    s = Schedule(lr=0.1, patience=2, min_delta=0.005, max_epochs=100)
    steps = [s.update(v) for v in (0.5, 0.503, 0.6, 0.6, 0.6)]
    # 0.503 is a new best but no improvement over min delta; after two flat epochs: next stage
    assert steps == [(True, "continue"), (True, "continue"), (True, "continue"), (False, "continue"),
                     (False, "next-stage")]  # fmt: skip
    assert s.stage == 1 and s.current_lr == pytest.approx(0.01) and s.best == 0.6 and s.best_epoch == 3
    assert [s.update(0.59)[1], s.update(0.59)[1]] == ["continue", "next-stage"]
    assert s.current_lr == pytest.approx(0.001)
    assert [s.update(0.1)[1], s.update(0.1)[1]] == ["continue", "done"] and s.done
    capped = Schedule(lr=1.0, patience=5, max_epochs=2)
    assert [capped.update(0.1)[1], capped.update(0.2)[1]] == ["continue", "done"]
    again = Schedule(lr=1.0)
    again.load_state_dict(s.state_dict())
    assert again == s and not math.isinf(again.best)


@pytest.mark.slow
def test_a_full_disk_mid_write_keeps_the_previous_state_readable(tmp_path):
    """A real write limit (RLIMIT_FSIZE): the larger new state fails, the old one stays."""
    root = Path(__file__).resolve().parents[2]
    script = textwrap.dedent(
        f"""
        import resource, signal, sys, torch
        sys.path.insert(0, {str(root)!r})
        from pathlib import Path
        from emonet.training import run_dir as rd
        run = Path({str(tmp_path)!r})
        rd.save_state(run, {{"w": torch.zeros(1000)}})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
        try:
            rd.save_state(run, {{"w": torch.ones(100000)}})
        except OSError as exc:
            print("failed:", exc.strerror)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "failed: File too large" in out.stdout, out.stderr
    from emonet.training.run_dir import load_state

    state = load_state(tmp_path)
    assert torch.equal(state["w"], torch.zeros(1000))
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"], "no temporary file is left behind"


def test_flipped_byte_in_state_is_one_line(tmp_path):
    from emonet.errors import TrainingError
    from emonet.training import run_dir as rd

    rd.save_state(tmp_path, {"w": torch.zeros(10)})
    data = bytearray((tmp_path / "state.pt").read_bytes())
    data[len(data) // 3] ^= 0xFF
    (tmp_path / "state.pt").write_bytes(bytes(data))
    with pytest.raises(TrainingError, match="state.pt: corrupt resume state") as exc:
        rd.load_state(tmp_path)
    assert "\n" not in str(exc.value)


def test_run_folders_never_collide_and_names_are_not_paths(tmp_path):
    from emonet.training.run_dir import create_run_dir

    a = create_run_dir(tmp_path, ["x", "y"], "same")
    b = create_run_dir(tmp_path, ["x", "y"], "same")
    c, d = create_run_dir(tmp_path, ["x"]), create_run_dir(tmp_path, ["x"])  # same second
    assert a.name == "same" and b.name == "same-2" and c != d and len({a, b, c, d}) == 4
    for bad in ("../up", "a/b", ".."):
        with pytest.raises(ConfigError, match="--run-name"):
            create_run_dir(tmp_path, ["x"], bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([a.name, b.name, c.name, d.name])


def test_a_run_folder_is_held_by_one_process(tmp_path):
    from emonet.errors import TrainingError
    from emonet.training.run_dir import create_run_dir, lock_run

    run = create_run_dir(tmp_path, ["x"])
    held = lock_run(run)
    with pytest.raises(TrainingError, match="another emonet train is running"):
        lock_run(run)
    held.close()
    lock_run(run).close()  # free again
