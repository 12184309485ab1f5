"""The trainer opened for extension: a user's callbacks see every step and epoch of a real run
and keep their state over a resume; another task schedule is one argument."""

from __future__ import annotations

import json

import pytest

from emonet.models import ModelConfig
from emonet.training import TrainConfig
from emonet.training.callbacks import Callback
from emonet.training.progress import Progress
from emonet.training.task_schedule import EveryTask
from emonet.training.trainer import Trainer, TrainingInterrupted

pytestmark = pytest.mark.slow  # real training runs

TINY = ModelConfig(n_blocks=1, n_filters=4, dropout=0.0)


def _config(store, exps, tasks=("acted", "arousal"), **kw) -> TrainConfig:
    base = dict(batch_size=8, window=1.0, epochs=1, patience=5, steps_per_epoch=3, learning_rate=0.01, device="cpu")
    base.update(kw)
    return TrainConfig(stores=[str(store)], tasks=list(tasks), experiments=str(exps), model=TINY, **base)


class Recorder(Callback):
    """Everything the trainer shows a callback, and a count kept in the resume state."""

    def __init__(self):
        self.steps, self.epochs, self.results, self.started, self.count = [], [], None, 0, 0

    def on_fit_start(self, trainer) -> None:
        self.started += 1

    def on_step_end(self, trainer, step) -> None:
        self.steps.append((step.epoch, step.step, step.global_step, step.task, float(step.loss)))
        self.count += 1

    def on_epoch_end(self, trainer, summary) -> None:
        self.epochs.append((summary.epoch, sorted(summary.devel)))

    def on_fit_end(self, trainer, results) -> None:
        self.results = results

    def state_dict(self) -> dict:
        return {"count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.count = state["count"]


def test_a_user_callback_sees_every_step_epoch_and_the_results(small_store, tmp_path):
    rec = Recorder()
    trainer = Trainer(_config(small_store, tmp_path), callbacks=[rec])
    results = trainer.run_training()
    # three stages of one epoch of 3 iterations, each one batch of every task in order (the original's);
    # the global step counts the iteration once its last task's batch is trained
    assert [(e, s, g, t) for e, s, g, t, _ in rec.steps] == [
        (e, s, 3 * (e - 1) + s - (t == "acted"), t) for e in (1, 2, 3) for s in (1, 2, 3) for t in ("acted", "arousal")
    ]
    assert all(loss > 0 for *_, loss in rec.steps)
    assert rec.epochs == [(e, ["acted", "arousal"]) for e in (1, 2, 3)] and rec.started == 1
    assert rec.results == results == json.loads((trainer.run_dir / "results.json").read_text())


class _StopAfterFirstEpoch(Progress):
    def epoch(self, summary) -> None:
        raise KeyboardInterrupt


def test_a_callbacks_state_survives_a_resume_and_the_run_ends_as_an_uninterrupted_one(small_store, tmp_path):
    from emonet.training.api import resume

    whole = Trainer(_config(small_store, tmp_path / "whole"), callbacks=[Recorder()])
    whole.run_training()
    first = Recorder()
    cut = Trainer(_config(small_store, tmp_path / "cut"), callbacks=[first], progress=_StopAfterFirstEpoch())
    with pytest.raises(TrainingInterrupted):
        cut.run_training()
    (run,) = (tmp_path / "cut").iterdir()
    again = Recorder()
    resume(run, callbacks=[again])
    assert first.count == 6 and again.count == 18, "the count went on from the saved state"
    assert [s[:4] for s in again.steps] == [
        (e, s, 3 * (e - 1) + s - (t == "acted"), t) for e in (2, 3) for s in (1, 2, 3) for t in ("acted", "arousal")
    ]  # epochs 2 and 3 (stages 2 and 3, fresh per-task optimisers), from where the first epoch stopped
    assert (run / "results.json").read_bytes() == (whole.run_dir / "results.json").read_bytes()
    assert (run / "metrics.csv").read_bytes() == (whole.run_dir / "metrics.csv").read_bytes()


def test_every_task_schedule_trains_each_task_once_per_step_in_order(small_store, tmp_path):
    rec = Recorder()
    cfg = _config(small_store, tmp_path, ("valence", "acted"), steps_per_epoch=4, batch_size=5, stages=1)
    trainer = Trainer(cfg, callbacks=[rec], task_schedule=EveryTask(["valence", "acted"]))
    trainer.run_training()
    assert [(s, g, t) for _, s, g, t, _ in rec.steps] == [
        (s, g, t) for s in (1, 2, 3, 4) for g, t in ((s - 1, "valence"), (s, "acted"))
    ]  # the step's position counts once its last task's batch is trained


def test_two_callbacks_of_one_name_are_refused(small_store, tmp_path):
    with pytest.raises(ValueError, match="two callbacks are named 'Recorder'"):
        Trainer(_config(small_store, tmp_path), callbacks=[Recorder(), Recorder()])
    other = Recorder()
    other.name = "second"  # a name of its own: both are kept
    Trainer(_config(small_store, tmp_path), callbacks=[Recorder(), other])
