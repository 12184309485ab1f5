"""Pooling the final features to one vector: the original EmoNet's avgpool top (an 8x8 average
pool over the cnn's map, flattened), a global masked mean, or attention (per task or shared)."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from emonet.errors import ConfigError
from emonet.models.config import AVGPOOL_CELL
from emonet.models.dtypes import at_least_float32
from emonet.models.keras_init import attention_normal_
from emonet.models.masking import time_mask
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


def map_size(size: int, strides: int = 3) -> int:
    """Positions left of ``size`` after ``strides`` stride-2 'same' stages (the cnn's map)."""
    for _ in range(strides):
        size = (size + 1) // 2  # ceil(size / 2), as masking.strided_lengths
    return size


class GridAvgPool(nn.Module):
    """The original EmoNet's avgpool top: non-overlapping 8x8 average pools over the cnn's final
    map (C, mels / 8, frames / 8), positions past the last whole cell dropped ('valid'), then
    flattened: C x (mel cells) x (frame cells) values (256 x 2 x 2 = 1024 for 4 s at 128 mels).

    The input length is fixed (``frames``, the -w window): padded positions are left out of
    each cell's mean (a cell of padding only is 0), so padding never changes a clip's vector.
    """

    def __init__(self, channels: int, n_mels: int, frames: int | None) -> None:
        super().__init__()
        if frames is None:
            raise ConfigError(
                "-c avgpool flattens the 8x8-pooled map of a fixed-size input: give a window (-w SECONDS) "
                "or use -c attention"
            )
        self.cells = (map_size(n_mels) // AVGPOOL_CELL, map_size(frames) // AVGPOOL_CELL)
        if min(self.cells) < 1:
            low = 8 * AVGPOOL_CELL - 7  # the shortest input whose map has 8 positions
            raise ConfigError(
                f"-c avgpool pools 8x8 cells of the final map (1/8 of the input): the input has {n_mels} mels "
                f"x {frames} frames, and both need at least {low}; use a longer -w or -c attention"
            )
        self.out_dim = channels * self.cells[0] * self.cells[1]

    def forward(self, feat: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """feat [batch, C, F, T] (0 past each item's valid ``lengths`` [batch] frames) -> [batch, out_dim]."""
        m = time_mask(lengths, feat.shape[-1])[:, None, None, :].to(feat.dtype)
        total = F.avg_pool2d(feat * m, AVGPOOL_CELL, divisor_override=1)
        count = F.avg_pool2d(m.expand(feat.shape[0], 1, *feat.shape[2:]), AVGPOOL_CELL, divisor_override=1)
        return (total / count.clamp(min=1)).flatten(1)


class Pooling(nn.Module):
    """Pools [batch, positions, C] to [batch, C], ignoring padded positions: the masked mean
    (``meanpool``; ``avgpool`` on the rnn's time steps, which have no 2-d map) or attention.

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
        elif kind not in ("avgpool", "meanpool"):
            raise ConfigError(f"unknown classifier {kind!r}; choose avgpool, attention or meanpool")
        self.shared = shared

    def forward(self, x: torch.Tensor, mask: torch.Tensor, task: str) -> torch.Tensor:
        if self.kind in ("avgpool", "meanpool"):
            return masked_mean(x, mask)
        attention = self.shared_attention if self.shared else self.attention[task]
        return attention(x, mask)
