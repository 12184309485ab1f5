"""Callbacks: what runs around the training loop without being part of it. The run folder's
files (checkpoints and resume state, metrics.csv, TensorBoard) and the progress display are
callbacks; ``Trainer(config, callbacks=[...])`` adds a user's own (a notebook's plot, a stop rule).

The trainer calls, in list order, ``on_fit_start`` once before the first step,
``on_step_end`` after every optimiser step, ``on_epoch_end`` after each recorded epoch and
``on_fit_end`` with the results. Every callback's ``state_dict()`` is part of the resume state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from emonet.data.normalization import norm_stats
from emonet.models import save_checkpoint
from emonet.training import run_dir as rd
from emonet.training.progress import EpochSummary, Progress
from emonet.training.report import close, log_scalars

if TYPE_CHECKING:
    import torch


@dataclass
class StepEnd:
    """One optimiser step that just ended."""

    epoch: int  # the epoch it belongs to, 1-based
    step: int  # the step in the epoch, 1-based (the loader's item: several tasks with some schedules)
    global_step: int  # steps of the whole run so far (the data position a resume continues at)
    task: str  # the task of this optimiser step
    loss: torch.Tensor  # its loss (a detached 0-d tensor: ``float()`` it only when needed, it syncs a GPU)
    running_loss: float | None = None  # the epoch's mean loss so far, every 10th and the last step


class Callback:
    """Base class: override what you need. ``name`` keys the callback's state in the resume
    state (the class name when None)."""

    name: str | None = None

    def on_fit_start(self, trainer) -> None:
        pass

    def on_step_end(self, trainer, step: StepEnd) -> None:
        pass

    def on_epoch_end(self, trainer, summary: EpochSummary) -> None:
        pass

    def on_fit_end(self, trainer, results: dict) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class MetricsCsv(Callback):
    """metrics.csv: rewritten from the run's history after each epoch (rank 0)."""

    def on_epoch_end(self, trainer, summary: EpochSummary) -> None:
        if trainer.rank == 0:
            with rd.writing(trainer.run_dir, rd.METRICS):
                rd.write_metrics(trainer.run_dir, trainer.history)


class TensorBoard(Callback):
    """tensorboard/: the epoch's rows of metrics.csv as scalars (rank 0)."""

    def on_epoch_end(self, trainer, summary: EpochSummary) -> None:
        if trainer.rank == 0:
            with rd.writing(trainer.run_dir, "tensorboard"):
                log_scalars(trainer.run_dir, trainer.history[-len(trainer.names) :])

    def on_fit_end(self, trainer, results: dict) -> None:
        close(trainer.run_dir)


class Checkpoints(Callback):
    """best.safetensors (the weights the run's results score: the best devel epoch so far with
    early stopping, every epoch's in the original's multi-task procedure, whose result is the
    final weights), last.safetensors and the resume state state.pt, in that order, after each
    epoch (rank 0). The trainer runs it after the user's callbacks, so their states in state.pt
    include this epoch."""

    def on_epoch_end(self, trainer, summary: EpochSummary) -> None:
        if trainer.rank != 0:
            return
        run = trainer.run_dir
        selected = summary.is_best or not trainer.config.early_stopping
        for which, name in (("best", rd.BEST), ("last", rd.LAST)):
            if which == "last" or selected:
                with rd.writing(run, name):
                    save_checkpoint(run / name, trainer.model, **self.meta(trainer, which))
        with rd.writing(run, rd.STATE):
            rd.save_state(run, trainer.state_dict())

    @staticmethod
    def meta(trainer, which: str) -> dict:
        """The checkpoint's self-description: features, normalisation, the run's config and epoch."""
        sched = trainer.schedule
        extra = {
            "kind": which, "epoch": sched.epoch, "best_epoch": sched.best_epoch, "score": sched.best,
            "mode": trainer.config.mode, "run": str(trainer.run_dir), "train_config": trainer.config.to_dict(),
        }  # fmt: skip
        run = norm_stats({t: d.store for t, d in trainer.tasks.items()}, trainer.config.band_norm)
        stats = {**trainer.initial_norms, **run}
        return {"feature_config": trainer.feature_config, "norm_stats": stats, "extra": extra}


class ProgressDisplay(Callback):
    """Shows the run through a :class:`~emonet.training.progress.Progress` (the CLI's bar)."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def on_fit_start(self, trainer) -> None:
        self.progress.begin(trainer.run_dir, trainer.spe, trainer.schedule.epoch)

    def on_step_end(self, trainer, step: StepEnd) -> None:
        if step.running_loss is not None:
            self.progress.step(step.epoch, step.step, step.running_loss)

    def on_epoch_end(self, trainer, summary: EpochSummary) -> None:
        self.progress.epoch(summary)

    def on_fit_end(self, trainer, results: dict) -> None:
        self.progress.end()


def arrange(progress: Progress, user: list[Callback]) -> list[Callback]:
    """The run's callbacks in calling order: the user's, then the checkpoints (so state.pt holds
    every callback's state after the epoch), then metrics.csv and TensorBoard (so a metrics.csv
    row means its epoch's state.pt is written: a run stopped in between resumes from that
    epoch), the display last (a stop there keeps the epoch's files)."""
    out = [*user, Checkpoints(), MetricsCsv(), TensorBoard(), ProgressDisplay(progress)]
    names = [state_name(c) for c in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        name = dup[0].removeprefix("callback:")
        raise ValueError(f"two callbacks are named {name!r}: give each its own name (their states are kept by name)")
    return out


def state_name(callback: Callback) -> str:
    """The callback's key in the resume state."""
    return f"callback:{callback.name or type(callback).__name__}"
