"""Training losses: cross entropy, focal and ordinal (SORD soft labels), with class weights.

``LOSSES`` (name -> :class:`LossSpec`) is the registry ``--loss`` and ``TrainConfig.loss`` read;
``register_loss`` adds a loss (see :mod:`emonet.training.losses.registry`). :class:`TaskLoss`
computes one task's loss ``loss(logits [B, K], labels [B]) -> scalar``.

    register_loss("hinge", hinge_per_item, help="multi-class hinge loss")
"""

from __future__ import annotations

from emonet.training.losses.registry import (
    LOSSES,
    LossSpec,
    check_loss_options,
    label_ranks,
    loss_spec,
    ordinal_targets,
    register_loss,
)

_LAZY = {"TaskLoss", "balanced_class_weights"}  # these load torch and numpy: only when used

__all__ = [
    "LOSSES",
    "LossSpec",
    "TaskLoss",
    "balanced_class_weights",
    "check_loss_options",
    "label_ranks",
    "loss_spec",
    "ordinal_targets",
    "register_loss",
]


def __getattr__(name: str):
    if name in _LAZY:
        from emonet.training.losses import task_loss  # here: the command line lists LOSSES without torch

        return getattr(task_loss, name)
    raise AttributeError(f"module 'emonet.training.losses' has no attribute {name!r}")
