"""The original EmoNet's multi-task procedure: one iteration is one batch of every task, each
its own optimiser step with the task's own optimiser; three stages of exactly -e x -spe
iterations, no early stopping, the final weights scored. Today's former behaviour stays
reachable through --task-schedule round-robin, --shared-optimizer and --select-best."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest
import torch

from emonet.errors import ConfigError
from emonet.models import ModelConfig, load_checkpoint
from emonet.training import TrainConfig
from emonet.training import run_dir as rd
from emonet.training.callbacks import Callback
from emonet.training.schedule import Schedule
from emonet.training.trainer import Trainer

TINY = ModelConfig(n_blocks=1, n_filters=4, dropout=0.0)
TASKS = ["acted", "arousal"]
FORMER = dict(task_schedule="round-robin", shared_optimizer=True, select_best=True)


def _config(store, exps, tasks=TASKS, **kw) -> TrainConfig:
    base = dict(batch_size=8, window=1.0, learning_rate=0.01, device="cpu")
    base.update(kw)
    return TrainConfig(stores=[str(store)], tasks=list(tasks), experiments=str(exps), model=TINY, **base)


def test_the_originals_defaults_depend_on_the_kind_of_run_and_are_recorded(tmp_path):
    multi = TrainConfig(stores=["s"], tasks=TASKS, experiments=str(tmp_path))
    assert (multi.epochs, multi.steps_per_epoch, multi.task_schedule) == (50, 20, "every-task")
    assert not multi.shared_optimizer and not multi.select_best and not multi.early_stopping
    single = TrainConfig(stores=["s"], tasks=["acted"], experiments=str(tmp_path))
    assert (single.epochs, single.steps_per_epoch, single.patience) == (1000, None, 20) and single.early_stopping
    assert TrainConfig.from_dict(multi.to_dict()).to_dict() == multi.to_dict()  # config.yaml holds 50 and 20
    assert multi.to_dict()["epochs"] == 50 and multi.to_dict()["steps_per_epoch"] == 20
    given = TrainConfig(stores=["s"], tasks=TASKS, experiments=str(tmp_path), epochs=3, steps_per_epoch=7)
    assert (given.epochs, given.steps_per_epoch) == (3, 7)
    assert TrainConfig(stores=["s"], tasks=TASKS, experiments=str(tmp_path), select_best=True).early_stopping
    with pytest.raises(ConfigError, match="--task-schedule 'random' is not one of: round-robin, every-task"):
        TrainConfig(stores=["s"], tasks=TASKS, experiments=str(tmp_path), task_schedule="random")


def test_the_cli_leaves_the_defaults_to_the_kind_of_run(tmp_path):
    from emonet.cli.train import train_config

    base = dict(stores=["s"], experiments=tmp_path)
    multi, single = train_config({**base, "tasks": TASKS}), train_config({**base, "tasks": ["acted"]})
    assert (multi.epochs, multi.steps_per_epoch, single.epochs, single.steps_per_epoch) == (50, 20, 1000, None)
    options = train_config({**base, "tasks": TASKS, "task_schedule": "round-robin", "shared_optimizer": True,
                            "select_best": True})  # fmt: skip
    assert (options.task_schedule, options.shared_optimizer, options.select_best) == ("round-robin", True, True)


def test_a_run_configured_before_the_options_resumes_with_their_former_behaviour(tmp_path):
    old = TrainConfig(stores=["s"], tasks=TASKS, experiments=str(tmp_path), epochs=4).to_dict()
    for key in FORMER:
        del old[key]
    resumed = TrainConfig.from_run(old)
    assert {k: getattr(resumed, k) for k in FORMER} == FORMER and resumed.epochs == 4
    now = TrainConfig(stores=["s"], tasks=TASKS, experiments=str(tmp_path)).to_dict()
    assert TrainConfig.from_run(now).to_dict() == now


def test_fixed_stages_run_exactly_their_epochs_whatever_the_scores():
    fixed = Schedule(0.1, patience=1, min_delta=1.0, stages=3, max_epochs=2, fixed=True)
    actions = [fixed.update(score)[1] for score in (0.5, 0.4, 0.3, 0.2, 0.1, 0.0)]
    assert actions == ["continue", "lower-lr", "continue", "lower-lr", "continue", "done"] and fixed.done
    assert (fixed.best, fixed.best_epoch, fixed.stage) == (0.5, 1, 2)
    stopping = Schedule(0.1, patience=1, min_delta=1.0, stages=3, max_epochs=6)  # the same scores, early stopping
    assert [stopping.update(s)[1] for s in (0.5, 0.4, 0.3, 0.2)] == ["continue", "next-stage", "next-stage", "done"]


class Batches(Callback):
    """(epoch, task) -> optimiser steps, and each epoch's stage and action."""

    def __init__(self):
        self.steps, self.epochs = Counter(), []

    def on_step_end(self, trainer, step) -> None:
        self.steps[step.epoch, step.task] += 1

    def on_epoch_end(self, trainer, summary) -> None:
        self.epochs.append((summary.epoch, summary.stage, summary.action))


# patience 1 with min_delta 1: a stage that stops early ends after its second epoch, whatever the scores
STOPPING = dict(epochs=2, steps_per_epoch=4, patience=1, min_delta=1.0)


@pytest.mark.slow
def test_three_stages_of_exactly_e_times_spe_iterations_of_every_task_and_the_final_weights(small_store, tmp_path):
    seen = Batches()
    trainer = Trainer(_config(small_store, tmp_path, **STOPPING), callbacks=[seen])
    results = trainer.run_training()
    run = trainer.run_dir
    assert seen.steps == Counter({(e, t): 4 for e in range(1, 7) for t in TASKS})  # spe batches of each task
    assert seen.epochs == [(1, 0, "continue"), (2, 0, "lower-lr"), (3, 1, "continue"), (4, 1, "lower-lr"),
                           (5, 2, "continue"), (6, 2, "done")]  # fmt: skip
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [(int(r["epoch"]), float(r["lr"])) for r in rows[::2]] == [
        (1, 0.01), (2, 0.01), (3, 0.001), (4, 0.001), (5, 0.0001), (6, 0.0001)
    ]  # fmt: skip
    assert trainer.step == 3 * 2 * 4 and trainer.best_state is None  # iterations; no best weights kept to reload
    doc = json.loads((run / "results.json").read_text())
    assert {doc[t][p]["epoch"] for t in TASKS for p in ("devel", "test")} == {6}  # the final weights
    final, selected = load_checkpoint(run / "last.safetensors")[0], load_checkpoint(run / "best.safetensors")[0]
    for (k, a), b in zip(final.state_dict().items(), selected.state_dict().values(), strict=True):
        assert torch.equal(a, b), k  # best.safetensors holds the weights results.json scores
    assert results["acted"]["test"] == doc["acted"]["test"]


@pytest.mark.slow
def test_the_former_behaviour_as_options_round_robin_one_optimiser_and_early_stopping(small_store, tmp_path):
    seen = Batches()
    # -e caps the epochs of all stages together here: 6 = as many as the original's 3 stages of 2
    trainer = Trainer(_config(small_store, tmp_path, **{**STOPPING, "epochs": 6}, **FORMER), callbacks=[seen])
    trainer.run_training()
    assert set(trainer.optimizers.values()) == {trainer.optimizers["acted"]}  # one optimiser
    # round robin: spe steps of one batch each, shared by the tasks; early stopping ends the run after 4 epochs
    assert seen.steps == Counter({(e, t): 2 for e in range(1, 5) for t in TASKS})
    assert seen.epochs == [(1, 0, "continue"), (2, 0, "next-stage"), (3, 1, "next-stage"), (4, 2, "done")]
    doc = json.loads((trainer.run_dir / "results.json").read_text())
    assert doc["acted"]["test"]["epoch"] == trainer.schedule.best_epoch and trainer.best_state is not None
    assert "optimizer" in rd.load_state(trainer.run_dir)


def _state_tensors(optimizer, p) -> list[torch.Tensor]:
    return [v for v in optimizer.state[p].values() if torch.is_tensor(v) and v.shape == p.shape]


@pytest.mark.slow
def test_each_task_has_its_own_optimiser_and_momentum_over_the_shared_weights(small_store, tmp_path):
    cfg = _config(small_store, tmp_path, epochs=1, steps_per_epoch=1, stages=1)
    trainer = Trainer(cfg)
    trainer.run_training()
    a, b = trainer.optimizers["acted"], trainer.optimizers["arousal"]
    assert a is not b
    assert [g["name"] for g in a.param_groups] == ["shared", "task:acted"]
    assert [g["name"] for g in b.param_groups] == ["shared", "task:arousal"]
    roles = trainer.model.tensor_roles()
    shared = [p for n, p in trainer.model.named_parameters() if roles[n][0] is None and p.requires_grad]
    own_a = {id(p) for g in a.param_groups for p in g["params"]}
    assert shared and all(id(p) in own_a for p in shared)
    conv = next(p for p in shared if p.dim() == 4)
    (ma,), (mb,) = _state_tensors(a, conv), _state_tensors(b, conv)  # one momentum buffer each after a real step
    assert not torch.equal(ma, mb)
    state = rd.load_state(trainer.run_dir)
    assert "optimizer" not in state and {"optimizer:acted", "optimizer:arousal"} <= set(state)
    kept = state["optimizer:acted"]["state"]
    assert any(torch.equal(v, ma) for s in kept.values() for v in s.values() if torch.is_tensor(v))
