"""TaskLoss, one task's loss module, and the balanced class weights it may apply."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from emonet.models.dtypes import at_least_float32
from emonet.training.losses.registry import loss_spec


def balanced_class_weights(label_ids: np.ndarray, n_classes: int) -> np.ndarray:
    """n / (k * count_c) per class (scikit-learn's "balanced"); 0 for a class without items."""
    labels = np.asarray(label_ids, dtype=np.int64)
    counts = np.bincount(labels[labels >= 0], minlength=n_classes).astype(np.float64)
    n = counts.sum()
    out = np.zeros(n_classes, np.float64)
    np.divide(n, n_classes * counts, out=out, where=counts > 0)
    return out.astype(np.float32)


class TaskLoss(torch.nn.Module):
    """One task's loss: the registered loss ``kind``, computed in float32 whatever the autocast
    precision (float64 stays float64). With class weights the batch loss is the original's sum(w_y * l) / batch size,
    or with ``weighted_mean`` the weighted mean sum(w_y * l) / sum(w_y) (as ``F.cross_entropy``).

    Args:
        kind: a name in ``LOSSES`` (crossentropy | focal | ordinal, or one registered since).
        n_classes: number of classes.
        class_weights: float [K] or None.
        gamma, alpha: focal loss parameters.
        ranks: class ranks for the ordinal loss (default 0..K-1).
        weighted_mean: divide a weighted batch's loss by the sum of its weights.
    """

    def __init__(
        self,
        kind: str,
        n_classes: int,
        class_weights: np.ndarray | None = None,
        gamma: float = 2.0,
        alpha: float = 0.25,
        ranks: Sequence[float] | None = None,
        weighted_mean: bool = False,
    ):
        super().__init__()
        self.spec = loss_spec(kind)
        self.kind, self.n_classes, self.gamma, self.alpha = kind, n_classes, float(gamma), float(alpha)
        w = torch.as_tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
        self.register_buffer("weight", w if w is not None else torch.ones(n_classes), persistent=False)
        self.weighted, self.weighted_mean = w is not None, weighted_mean
        r = torch.as_tensor(ranks if ranks is not None else range(n_classes), dtype=torch.float32)
        self.register_buffer("ranks", r, persistent=False)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        per_item = self.spec.per_item(at_least_float32(logits), labels, self)
        if not self.weighted:
            return per_item.mean()
        w = self.weight[labels]
        if self.weighted_mean:
            return (w * per_item).sum() / w.sum().clamp_min(1e-12)
        return (w * per_item).sum() / len(labels)
