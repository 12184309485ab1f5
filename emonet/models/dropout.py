"""Dropout with a faster CPU path (same semantics as nn.Dropout)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from emonet.errors import ConfigError


class Dropout(nn.Module):
    """``nn.Dropout`` whose CPU training path draws the keep-mask with ``rand_like``.

    ATen's CPU dropout (bernoulli_) is about 3x slower than uniform sampling on large feature
    maps; the result has the same distribution: zero with probability p, else x / (1 - p).
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    @property
    def active(self) -> bool:
        """True when ``forward`` changes its input (training with p > 0)."""
        return self.training and self.p > 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, True)
        keep = (torch.rand_like(x) >= self.p).to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.p}"
