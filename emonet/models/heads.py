"""Per-task classifier head."""

from __future__ import annotations

import torch
from torch import nn

from emonet.models.dropout import Dropout
from emonet.models.keras_init import glorot_dense_
from emonet.models.norm import batch_norm_1d


class Head(nn.Module):
    """Dense(D/2) -> BatchNorm -> ReLU -> Dropout -> Dense(classes); returns logits.

    A two-class head is the original's Dense(1) (sigmoid) output: its one value z becomes the
    logits (0, z), whose softmax is (1 - sigmoid(z), sigmoid(z)), so the losses and predictions
    over classes apply unchanged and the two-class losses are the binary ones exactly.
    """

    def __init__(self, dim: int, n_classes: int, dropout: float) -> None:
        super().__init__()
        hidden = max(dim // 2, 1)
        self.binary = n_classes == 2
        self.fc1 = glorot_dense_(nn.Linear(dim, hidden))
        self.bn = batch_norm_1d(hidden)
        self.drop = Dropout(dropout)
        self.fc2 = glorot_dense_(nn.Linear(hidden, 1 if self.binary else n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc2(self.drop(torch.relu(self.bn(self.fc1(x)))))
        if self.binary:
            out = torch.cat([torch.zeros_like(out), out], dim=1)
        return out

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """A two-class head saved with two outputs (a, b) loads as its one output b - a: the
        same softmax, so the same predictions."""
        for key in (prefix + "fc2.weight", prefix + "fc2.bias"):
            value = state_dict.get(key)
            if self.binary and value is not None and value.shape[0] == 2:
                state_dict[key] = (value[1] - value[0])[None]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
