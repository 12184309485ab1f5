"""Training losses: cross entropy, focal and ordinal (SORD soft labels), with class weights.

Each loss is ``loss(logits [B, K], labels [B]) -> scalar``, computed in float32 whatever the
autocast precision. With class weights the mean is weighted (as ``F.cross_entropy`` does):
sum(w_y * l) / sum(w_y).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from emonet.errors import ConfigError

LOSSES = ("crossentropy", "focal", "ordinal")


def balanced_class_weights(label_ids: np.ndarray, n_classes: int) -> np.ndarray:
    """n / (k * count_c) per class (scikit-learn's "balanced"); 0 for a class without items."""
    labels = np.asarray(label_ids, dtype=np.int64)
    counts = np.bincount(labels[labels >= 0], minlength=n_classes).astype(np.float64)
    n = counts.sum()
    out = np.zeros(n_classes, np.float64)
    np.divide(n, n_classes * counts, out=out, where=counts > 0)
    return out.astype(np.float32)


def ordinal_targets(labels: torch.Tensor, ranks: torch.Tensor) -> torch.Tensor:
    """SORD soft targets q_k = softmax_k(-|r_true - r_k|) for class ranks ``ranks`` [K]."""
    r_true = ranks[labels]
    return torch.softmax(-(r_true[:, None] - ranks[None, :]).abs(), dim=1)


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


class TaskLoss(torch.nn.Module):
    """One task's loss.

    Args:
        kind: crossentropy | focal | ordinal.
        n_classes: number of classes.
        class_weights: float [K] or None.
        gamma, alpha: focal loss parameters.
        ranks: class ranks for the ordinal loss (default 0..K-1).
    """

    def __init__(
        self,
        kind: str,
        n_classes: int,
        class_weights: np.ndarray | None = None,
        gamma: float = 2.0,
        alpha: float = 0.25,
        ranks: Sequence[float] | None = None,
    ):
        super().__init__()
        if kind not in LOSSES:
            raise ConfigError(f"unknown --loss {kind!r}; choose one of {', '.join(LOSSES)}")
        self.kind, self.gamma, self.alpha = kind, float(gamma), float(alpha)
        w = torch.as_tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
        self.register_buffer("weight", w if w is not None else torch.ones(n_classes), persistent=False)
        self.weighted = w is not None
        r = torch.as_tensor(ranks if ranks is not None else range(n_classes), dtype=torch.float32)
        self.register_buffer("ranks", r, persistent=False)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(logits.float(), dim=1)
        if self.kind == "crossentropy":
            per_item = -logp.gather(1, labels[:, None])[:, 0]
        elif self.kind == "focal":
            logp_t = logp.gather(1, labels[:, None])[:, 0]
            per_item = -self.alpha * (1.0 - logp_t.exp()).pow(self.gamma) * logp_t
        else:
            per_item = -(ordinal_targets(labels, self.ranks) * logp).sum(dim=1)
        if not self.weighted:
            return per_item.mean()
        w = self.weight[labels]
        return (w * per_item).sum() / w.sum().clamp_min(1e-12)


def check_loss_options(kind: str, gamma: float, alpha: float) -> None:
    """Refuse unusable focal parameters with one line."""
    if kind not in LOSSES:
        raise ConfigError(f"unknown --loss {kind!r}; choose one of {', '.join(LOSSES)}")
    if not (gamma >= 0 and math.isfinite(gamma)):
        raise ConfigError(f"--focal-gamma must be a finite number >= 0, got {gamma}")
    if not 0 < alpha <= 1:
        raise ConfigError(f"--focal-alpha must be in (0, 1], got {alpha}")
