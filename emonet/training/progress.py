"""What the trainer reports while it runs. The library reports nothing by default; the CLI
passes a rich progress bar (or plain lines when not on a terminal)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EpochSummary:
    """One finished epoch: per-task train loss and devel metrics, the selection score."""

    epoch: int
    stage: int
    lr: float
    train_loss: dict[str, float]
    devel: dict[str, dict]  # task -> {"uar", "accuracy", "macro_f1", "loss"}
    score: float  # mean devel UAR over the tasks
    is_best: bool
    action: str  # continue | next-stage (from the best weights) | lower-lr (from the current ones) | done
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


class Progress:
    """No-op base: override what you want to show."""

    def begin(self, run_dir, steps_per_epoch: int, start_epoch: int) -> None:
        pass

    def step(self, epoch: int, step: int, loss: float | None) -> None:
        pass

    def epoch(self, summary: EpochSummary) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def end(self) -> None:
        pass
