"""Per-task classifier head."""

from __future__ import annotations

import torch
from torch import nn

from emonet.models.dropout import Dropout
from emonet.models.keras_init import glorot_dense_
from emonet.models.norm import batch_norm_1d


class Head(nn.Module):
    """Dense(D/2) -> BatchNorm -> ReLU -> Dropout -> Dense(classes); returns logits."""

    def __init__(self, dim: int, n_classes: int, dropout: float) -> None:
        super().__init__()
        hidden = max(dim // 2, 1)
        self.fc1 = glorot_dense_(nn.Linear(dim, hidden))
        self.bn = batch_norm_1d(hidden)
        self.drop = Dropout(dropout)
        self.fc2 = glorot_dense_(nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(torch.relu(self.bn(self.fc1(x)))))
