"""The resume state is built from, and restored into, one registry of stateful objects: every
registered name is saved, an fp16 loss scale survives, a state written before the registry
still resumes to the same end, and an unknown one is refused in one line."""

from __future__ import annotations

import pytest
import torch

from emonet.errors import TrainingError
from emonet.models import ModelConfig
from emonet.training import TrainConfig
from emonet.training import run_dir as rd
from emonet.training.api import resume
from emonet.training.callbacks import Callback
from emonet.training.progress import Progress
from emonet.training.state import StateRegistry
from emonet.training.trainer import Trainer, TrainingInterrupted

TINY = ModelConfig(n_blocks=1, n_filters=4, dropout=0.0)


def _config(store, exps, **kw) -> TrainConfig:
    base = dict(batch_size=8, window=1.0, epochs=2, patience=5, steps_per_epoch=2, learning_rate=0.01, device="cpu")
    base.update(kw)
    return TrainConfig(stores=[str(store)], tasks=["arousal"], experiments=str(exps), model=TINY, **base)


def _scaler(scale: float) -> torch.amp.GradScaler:
    scaler = torch.amp.GradScaler("cpu", init_scale=65536.0)
    scaler.scale(torch.ones(()))  # the scale exists once a loss was scaled
    scaler.update(new_scale=scale)
    return scaler


def test_a_grad_scalers_scale_survives_the_resume_state_file(tmp_path):
    saved = StateRegistry()
    saved.register("scaler", _scaler(37.0))
    rd.save_state(tmp_path, saved.state_dict())
    fresh, restored = StateRegistry(), torch.amp.GradScaler("cpu", init_scale=65536.0)
    fresh.register("scaler", restored)
    assert fresh.load_state_dict(rd.load_state(tmp_path), tmp_path) == []
    assert restored.get_scale() == 37.0


def test_a_registered_name_missing_from_the_state_is_one_line(tmp_path):
    saved = StateRegistry()
    saved.register("schedule", torch.nn.Linear(1, 1))
    fresh = StateRegistry()
    fresh.register("scaler", _scaler(2.0))
    with pytest.raises(TrainingError, match="state.pt: the resume state has no 'scaler'") as exc:
        fresh.load_state_dict(saved.state_dict(), tmp_path)
    assert str(tmp_path) in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(TypeError, match="state_dict"):
        fresh.register("nothing", object())


class _StopAfterFirstEpoch(Progress):
    def epoch(self, summary) -> None:
        raise KeyboardInterrupt


def _interrupted_run(store, exps, **kw):
    """A real run stopped (as by Ctrl-C) after its first epoch of two."""
    with pytest.raises(TrainingInterrupted):
        Trainer(_config(store, exps), progress=_StopAfterFirstEpoch(), **kw).run_training()
    (run,) = exps.iterdir()
    return run


class _Marker(Callback):
    epochs = 0

    def on_epoch_end(self, trainer, summary) -> None:
        self.epochs += 1

    def state_dict(self) -> dict:
        return {"epochs": self.epochs}


@pytest.mark.slow
def test_the_saved_state_holds_every_registered_name(small_store, tmp_path):
    trainer = Trainer(_config(small_store, tmp_path, epochs=1), callbacks=[_Marker()])
    trainer.register_state("scaler", _scaler(5.0))  # as an fp16 run registers its GradScaler
    trainer.run_training()
    state = rd.load_state(trainer.run_dir)
    assert set(state) == {"format", *trainer.states.entries}
    assert {"model", "optimizer", "schedule", "task_schedule", "data", "record", "rng", "scaler"} <= set(state)
    assert state["scaler"]["scale"] == 5.0 and state["callback:_Marker"] == {"epochs": 1}  # saved after its epoch end
    assert state["data"] == {"step": 2} and state["task_schedule"] == {"kind": "every-task", "tasks": ["arousal"]}


@pytest.mark.slow
def test_a_state_written_before_the_registry_resumes_to_the_same_end(small_store, tmp_path):
    whole = Trainer(_config(small_store, tmp_path / "whole"))
    whole.run_training()
    run = _interrupted_run(small_store, tmp_path / "cut")
    new = rd.load_state(run)
    old = {  # the layout of the hand-built resume state of earlier versions
        "model": new["model"], "best_model": new["record"]["best_state"], "optimizer": new["optimizer"],
        "schedule": new["schedule"], "step": new["data"]["step"], "history": new["record"]["history"],
        "rng": new["rng"],
    }  # fmt: skip
    rd.save_state(run, old)
    resume(run)
    assert (run / "results.json").read_bytes() == (whole.run_dir / "results.json").read_bytes()
    assert (run / "metrics.csv").read_bytes() == (whole.run_dir / "metrics.csv").read_bytes()


@pytest.mark.slow
def test_an_unknown_or_mismatched_state_is_refused_in_one_line(small_store, tmp_path):
    from emonet.training.task_schedule import RoundRobin

    run = _interrupted_run(small_store, tmp_path)
    with pytest.raises(TrainingError) as exc:  # another task schedule than the run started with
        Trainer(_config(small_store, tmp_path), resume=run, task_schedule=RoundRobin(["arousal"])).run_training()
    assert f"--resume {run}" in str(exc.value) and "schedule it started with" in str(exc.value)
    rd.save_state(run, {"weights": torch.zeros(1)})
    with pytest.raises(TrainingError) as exc:
        resume(run)
    msg = str(exc.value)
    assert "\n" not in msg and f"{run}/state.pt" in msg and "start a new run" in msg
