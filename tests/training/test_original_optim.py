"""The original EmoNet's optimiser: SGD with momentum 0.9 and Keras' time-based decay by
training-set size, the other optimisers' Keras parameters, and the L2 penalties, on real
parameters, a real resume round trip and a real trainer."""

from __future__ import annotations

import copy

import pytest
import torch

from emonet.models import ModelConfig, adapter_parameters
from emonet.training import TrainConfig
from emonet.training.optim import build_optimizer, individual_weight_decay, sgd_decay, task_decay
from emonet.training.trainer import Trainer

TINY = ModelConfig(n_blocks=1, n_filters=4)


def test_the_size_table_rounds_the_train_size_up_to_whole_batches():
    sizes = (10000, 9999, 1000, 999, 500, 499, 10)
    assert [sgd_decay(n, 1, iwd=False) for n in sizes] == [1e-6, 5e-4, 5e-4, 2e-3, 2e-3, 5e-3, 5e-3]
    # 9950 items are 156 batches of 64 = 9984 < 10000; 9985 are 157 batches = 10048
    assert sgd_decay(9950, 64, iwd=False) == 5e-4 and sgd_decay(9985, 64, iwd=False) == 1e-6
    assert sgd_decay(450, 64, iwd=False) == 2e-3  # 8 batches = 512
    # -iwd: the decay is 1e-6 and the table is the adapters' L2 factor instead
    assert sgd_decay(450, 64, iwd=True) == 1e-6 and individual_weight_decay(450, 64) == 2e-3
    assert task_decay("sgd", 450, 64, False) == 2e-3
    assert [task_decay(o, 450, 64, False) for o in ("adam", "rmsprop")] == [0.0, 0.0]


def _steps(opt: torch.optim.Optimizer, p: torch.nn.Parameter, grads: list[float]) -> list[float]:
    """Apply one update per gradient value; returns the lr each update used."""
    used = []
    for g in grads:
        p.grad = torch.full_like(p, g)
        opt.step()
        used.append(opt.param_groups[0]["lr"])
    return used


def test_sgd_is_momentum_0_9_without_nesterov_and_decays_by_its_own_update_count():
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = build_optimizer("sgd", [{"name": "shared", "params": [p]}], 0.1, decay=0.5)
    group = opt.param_groups[0]
    assert group["momentum"] == 0.9 and group["nesterov"] is False and group["dampening"] == 0
    grads = [1.0, -2.0, 0.5, 3.0]
    used = _steps(opt, p, grads)
    assert used == [0.1 / (1 + 0.5 * t) for t in range(4)]
    # Keras' SGD by hand: v = 0.9 v - lr_t g; w += v (torch's buffer form is the same update)
    w, v = 0.0, 0.0
    for t, g in enumerate(grads):
        v = 0.9 * v + g
        w -= 0.1 / (1 + 0.5 * t) * v
    assert p.detach().tolist() == pytest.approx([w] * 3, rel=1e-12)
    # a fresh optimiser (a new stage) starts its count again
    again = build_optimizer("sgd", [{"name": "shared", "params": [p]}], 0.01, decay=0.5)
    assert _steps(again, p, [1.0, 1.0]) == [0.01, 0.01 / 1.5]


def test_no_decay_keeps_the_lr_and_other_optimisers_have_the_keras_parameters():
    p = torch.nn.Parameter(torch.zeros(2))
    assert _steps(build_optimizer("sgd", [{"params": [p]}], 0.1), p, [1.0, 1.0, 1.0]) == [0.1] * 3
    rms = build_optimizer("rmsprop", [{"params": [p]}], 0.1).param_groups[0]
    assert (rms["alpha"], rms["eps"], rms["momentum"], rms["centered"]) == (0.9, 1e-7, 0, False)
    adam = build_optimizer("adam", [{"params": [p]}], 0.1).param_groups[0]
    assert (adam["betas"], adam["eps"], adam["amsgrad"]) == ((0.9, 0.999), 1e-7, False)


def test_the_decay_survives_a_state_dict_round_trip_exactly():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(4))
    opt = build_optimizer("sgd", [{"name": "task:x", "params": [a]}], 0.1, decay=0.25)
    _steps(opt, a, [0.3, -0.7, 1.1])
    b = torch.nn.Parameter(a.detach().clone())
    resumed = build_optimizer("sgd", [{"name": "task:x", "params": [b]}], 0.1, decay=0.25)
    resumed.load_state_dict(copy.deepcopy(opt.state_dict()))  # as from state.pt: no shared buffers
    assert _steps(resumed, b, [0.9, 0.2]) == _steps(opt, a, [0.9, 0.2]) == [0.1 / 1.75, 0.1 / 2.0]
    assert torch.equal(a, b)


def _trainer(store, tmp_path, tasks, **kw) -> Trainer:
    base = dict(batch_size=8, window=1.0, epochs=1, patience=5, steps_per_epoch=3, learning_rate=0.05)
    base.update(kw)
    return Trainer(TrainConfig(stores=[str(store)], tasks=tasks, experiments=str(tmp_path), model=TINY, **base))


def _factors(trainer: Trainer, task: str) -> dict[str, float]:
    """Which L2 factor each penalised parameter of ``task`` gets: 'shared' 3x3 kernels / 'adapters'."""
    adapters = {id(p) for p in adapter_parameters(trainer.model, task)}
    out = {}
    for params, factor in trainer.penalties[task]:
        kinds = {"adapters" if id(p) in adapters else "shared" for p in params}
        assert len(kinds) == 1
        out[kinds.pop()] = factor
    return out


def test_the_trainer_decays_each_task_by_its_size_and_penalises_adapter_kernels(small_store, tmp_path):
    trainer = _trainer(small_store, tmp_path, ["acted", "arousal"])
    try:
        sizes = {t: d.n_train for t, d in trainer.tasks.items()}
        # each task's own optimiser (the original's) decays with its own task's size, shared weights included
        for task in sizes:
            decay = {g["name"]: g["decay"] for g in trainer.optimizers[task].param_groups}
            assert decay == {
                "shared": sgd_decay(sizes[task], 8, False),
                f"task:{task}": sgd_decay(sizes[task], 8, False),
            }
        assert sgd_decay(sizes["acted"], 8, False) == 5e-3
        # without -iwd: the original's 1e-6 on the shared 3x3 kernels and on the task's adapter kernels
        assert _factors(trainer, "acted") == {"shared": 1e-6, "adapters": 1e-6}
    finally:
        trainer._lock.close()
    iwd = _trainer(small_store, tmp_path, ["acted", "arousal"], individual_weight_decay=True)
    try:
        assert {g["decay"] for opt in iwd.optimizers.values() for g in opt.param_groups} == {1e-6}
        assert _factors(iwd, "acted") == {"shared": 1e-6, "adapters": individual_weight_decay(sizes["acted"], 8)}
    finally:
        iwd._lock.close()


@pytest.mark.slow  # a real run
def test_a_short_run_trains_at_the_decayed_lr(small_store, tmp_path):
    trainer = _trainer(small_store, tmp_path, ["acted"], mode="scratch", epochs=1)
    trainer.run_training()
    group = trainer.optimizers["acted"].param_groups[0]
    d = sgd_decay(trainer.tasks["acted"].n_train, 8, False)
    assert group["decay"] == d and group["decay_updates"] == 3
    assert group["lr"] == pytest.approx(0.05 / (1 + 2 * d), rel=1e-12)  # the third update's lr


def test_a_shared_optimizer_decays_each_task_group_by_its_task_and_the_shared_by_the_largest(small_store, tmp_path):
    trainer = _trainer(small_store, tmp_path, ["acted", "arousal"], shared_optimizer=True)
    try:
        sizes = {t: d.n_train for t, d in trainer.tasks.items()}
        opt = trainer.optimizers["acted"]
        assert opt is trainer.optimizers["arousal"]
        decay = {g["name"]: g["decay"] for g in opt.param_groups}
        assert decay["shared"] == min(sgd_decay(n, 8, False) for n in sizes.values())
        assert all(decay[f"task:{t}"] == sgd_decay(n, 8, False) for t, n in sizes.items())
    finally:
        trainer._lock.close()
