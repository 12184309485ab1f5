"""The original's learning-rate schedule: stages lr, lr/10, lr/100. A single task early-stops
each on the validation score (min delta, patience) and continues from the best weights; a
multi-task run (``fixed``) runs each for exactly ``max_epochs`` epochs from the current weights."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class Schedule:
    """Early stopping across stages. Call :meth:`update` once per epoch with the validation
    score; it says what to do next.

    The best weights are those of the highest score so far (``best``); patience counts
    epochs without an improvement of more than ``min_delta`` over ``reference`` (as Keras'
    EarlyStopping). A stage that runs out of patience ends; the next starts from the best
    weights with a tenth of the learning rate. ``max_epochs`` caps all stages together.

    ``fixed`` (the original's multi-task procedure): no early stopping; every stage runs
    exactly ``max_epochs`` epochs and the next continues from the current weights (action
    'lower-lr'). The best score is still tracked.
    """

    lr: float
    patience: int = 20
    min_delta: float = 0.005
    stages: int = 3
    max_epochs: int = 1000
    stage: int = 0
    epoch: int = 0  # epochs finished
    best: float = -math.inf
    best_epoch: int = -1
    reference: float = -math.inf
    bad_epochs: int = 0
    done: bool = False
    fixed: bool = False

    @property
    def current_lr(self) -> float:
        return self.lr / 10**self.stage

    def update(self, score: float) -> tuple[bool, str]:
        """Record an epoch's score; returns (new best weights?, action) with action
        'continue', 'next-stage' (restore the best weights, lower the lr), 'lower-lr' (lower
        the lr, keep the weights: ``fixed``) or 'done'."""
        self.epoch += 1
        is_best = score > self.best
        if is_best:
            self.best, self.best_epoch = score, self.epoch
        if self.fixed:
            return is_best, self._fixed_stage_end()
        if score - self.min_delta > self.reference:
            self.reference, self.bad_epochs = score, 0
        else:
            self.bad_epochs += 1
        if self.epoch >= self.max_epochs:
            self.done = True
            return is_best, "done"
        if self.bad_epochs >= self.patience:
            if self.stage + 1 >= self.stages:
                self.done = True
                return is_best, "done"
            self.stage += 1
            self.bad_epochs = 0
            self.reference = self.best
            return is_best, "next-stage"
        return is_best, "continue"

    def _fixed_stage_end(self) -> str:
        """``fixed``: a stage ends after exactly ``max_epochs`` epochs."""
        if self.epoch % self.max_epochs:
            return "continue"
        if self.stage + 1 >= self.stages:
            self.done = True
            return "done"
        self.stage += 1
        return "lower-lr"

    def state_dict(self) -> dict:
        """Everything, as plain data (for the resume state)."""
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s output."""
        for k, v in state.items():
            setattr(self, k, v)
