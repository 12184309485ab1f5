"""Masked pooling over positions: average, or attention (per task or shared)."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from emonet.errors import ConfigError
from emonet.models.dtypes import at_least_float32
from emonet.models.keras_init import attention_normal_
from emonet.models.task_parts import TaskDict


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of x [batch, positions, C] over the positions where mask [batch, positions] is True."""
    total = x.masked_fill(~mask[..., None], 0.0).sum(dim=1)
    count = mask.sum(dim=1, keepdim=True).clamp(min=1).to(total.dtype)
    return total / count


class AttentionPool(nn.Module):
    """e_i = lambda * u^T tanh(W x_i + b); a = softmax over valid positions; out = sum_i a_i x_i."""

    def __init__(self, dim: int, lam: float) -> None:
        super().__init__()
        self.lam = lam
        self.proj = attention_normal_(nn.Linear(dim, dim))  # W, b
        self.score = attention_normal_(nn.Linear(dim, 1, bias=False))  # u

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        e = self.lam * self.score(torch.tanh(self.proj(x))).squeeze(-1)
        e = at_least_float32(e).masked_fill(~mask, float("-inf"))
        a = torch.softmax(e, dim=1).to(x.dtype)
        return torch.bmm(a.unsqueeze(1), x).squeeze(1)


class Pooling(nn.Module):
    """Pools [batch, positions, C] to [batch, C], ignoring padded positions.

    ``attention`` is one ``AttentionPool`` per task (``attention.<task>``) or, with
    ``shared=True`` (``--share-feature-layer``), one for all tasks (``shared_attention``).
    """

    def __init__(self, dim: int, kind: str, shared: bool, lam: float) -> None:
        super().__init__()
        self.kind = kind
        self.dim = dim
        if kind == "attention":
            if shared:
                self.shared_attention = AttentionPool(dim, lam)
            else:
                self.attention = TaskDict("attention", partial(AttentionPool, dim, lam))
        elif kind != "avgpool":
            raise ConfigError(f"unknown classifier {kind!r}; choose avgpool or attention")
        self.shared = shared

    def forward(self, x: torch.Tensor, mask: torch.Tensor, task: str) -> torch.Tensor:
        if self.kind == "avgpool":
            return masked_mean(x, mask)
        attention = self.shared_attention if self.shared else self.attention[task]
        return attention(x, mask)
