"""The losses by name: ``LOSSES`` maps a name to its :class:`LossSpec`; ``register_loss`` adds one.

A loss is a per-utterance function ``per_item(logits, labels, loss) -> [B]`` of float32
``logits`` [B, K] and ``labels`` [B]; ``loss`` is the task's :class:`TaskLoss`, whose ``gamma``
and ``alpha`` (the focal options), ``ranks`` (the class ranks, on the logits' device) and
``n_classes`` it may read. TaskLoss weights and averages the per-utterance values.

This module does not import torch (the functions use tensor methods only), so that the command
line can list the losses and their help without loading it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from emonet.errors import ConfigError

if TYPE_CHECKING:
    import torch

_LOG_EPS, _LOG_1M_EPS = math.log(1e-7), math.log1p(-1e-7)  # Keras' probability clip, as log p

PerItem = Callable[["torch.Tensor", "torch.Tensor", object], "torch.Tensor"]


@dataclass(frozen=True)
class LossSpec:
    """A registered loss: its name, per-utterance function and one-line help (for ``--loss``).
    ``ranked``: it reads the class ranks, which ``--label-order`` sets."""

    name: str
    per_item: PerItem
    help: str
    ranked: bool = False


LOSSES: dict[str, LossSpec] = {}


def register_loss(name: str, per_item: PerItem, *, help: str, ranked: bool = False) -> LossSpec:
    """Add a loss that ``TrainConfig.loss`` (``--loss``) can name.

    Args:
        name: the name, as ``--loss`` takes it.
        per_item: ``per_item(logits, labels, loss) -> [B]`` (see the module's docstring).
        help: one line for ``emonet train --help``.
        ranked: it reads ``loss.ranks`` (so ``--label-order`` applies to it).

    Returns:
        The registered spec.
    """
    if name in LOSSES:
        raise ValueError(f"a loss named {name!r} is already registered; register it under another name")
    spec = LossSpec(name, per_item, " ".join(help.split()), ranked)
    LOSSES[name] = spec
    return spec


def loss_spec(name: str) -> LossSpec:
    """The registered loss ``name``; an unknown name is a one-line ConfigError naming the choices."""
    if name not in LOSSES:
        raise ConfigError(f"unknown --loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]


def check_loss_options(kind: str, gamma: float, alpha: float) -> None:
    """Refuse an unknown loss or unusable focal parameters with one line."""
    loss_spec(kind)
    if not (gamma >= 0 and math.isfinite(gamma)):
        raise ConfigError(f"--focal-gamma must be a finite number >= 0, got {gamma}")
    if not 0 < alpha <= 1:
        raise ConfigError(f"--focal-alpha must be in (0, 1], got {alpha}")


def ordinal_targets(labels: torch.Tensor, ranks: torch.Tensor) -> torch.Tensor:
    """SORD soft targets q_k = softmax_k(-|r_true - r_k|) for class ranks ``ranks`` [K]."""
    r_true = ranks[labels]
    return (-(r_true[:, None] - ranks[None, :]).abs()).softmax(dim=1)


def label_ranks(classes: Sequence[str], order: Sequence[str] | None) -> list[float]:
    """Rank of each class (index into ``classes``) for the ordinal loss: its position in
    ``order`` (default: the label map's order). ``order`` must name every class once."""
    if not order:
        return [float(i) for i in range(len(classes))]
    if sorted(order) != sorted(classes):
        raise ConfigError(
            f"--label-order {' '.join(order)}: must list each class exactly once; the classes are {', '.join(classes)}"
        )
    pos = {c: i for i, c in enumerate(order)}
    return [float(pos[c]) for c in classes]


def _target_log_prob(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return logits.log_softmax(dim=1).gather(1, labels[:, None])[:, 0]


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, loss) -> torch.Tensor:
    """-log p_y (two classes: the binary cross entropy of the sigmoid output)."""
    return -_target_log_prob(logits, labels)


def focal(logits: torch.Tensor, labels: torch.Tensor, loss) -> torch.Tensor:
    """-alpha (1 - p_y)^gamma log p_y, p_y clipped to [1e-7, 1 - 1e-7] as the original's.
    Two classes: the binary focal loss, alpha on the second (positive) class, 1 - alpha on the
    first."""
    logp_t = _target_log_prob(logits, labels).clamp(_LOG_EPS, _LOG_1M_EPS)
    alpha = loss.alpha
    if logits.shape[1] == 2:
        alpha = (labels == 1).to(logits.dtype) * (2 * alpha - 1) + (1 - alpha)
    return -alpha * (1.0 - logp_t.exp()).pow(loss.gamma) * logp_t


def ordinal(logits: torch.Tensor, labels: torch.Tensor, loss) -> torch.Tensor:
    """Cross entropy against the SORD soft targets of the class ranks; two classes: plain
    (binary) cross entropy, as the original's."""
    if logits.shape[1] == 2:
        return cross_entropy(logits, labels, loss)
    return -(ordinal_targets(labels, loss.ranks) * logits.log_softmax(dim=1)).sum(dim=1)


register_loss("crossentropy", cross_entropy, help="cross entropy")
register_loss("focal", focal, help="focal loss, -alpha (1 - p)^gamma log p (--focal-gamma, --focal-alpha)")
register_loss("ordinal", ordinal, help="soft ordinal labels (SORD) over the class order (--label-order)", ranked=True)
