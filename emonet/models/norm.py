"""BatchNorm with the original's Keras settings and masked batch statistics for padded batches."""

from __future__ import annotations

import torch
from torch import nn

# Keras BatchNormalization defaults (momentum 0.99 on the running value, eps 1e-3). torch's
# momentum is the weight of the new batch, so 1 - 0.99.
BN_MOMENTUM = 0.01
BN_EPS = 1e-3


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training statistics come from the valid positions only.

    ``forward(x, mask)``: ``mask`` is a bool tensor broadcastable to ``x`` ([batch, 1, 1, frames]
    for time padding) or None (every position is valid: plain BatchNorm). In training with a
    mask, the batch mean and (biased) variance are taken over the valid positions of every
    item, and the running statistics are updated from them (unbiased variance, like torch),
    so a short clip's output and the running statistics do not depend on what it was batched
    with. In eval mode (or when the statistics are frozen) the mask is irrelevant. Positions
    outside the mask get finite values that the caller zeroes.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None or not self.training:
            return super().forward(x)
        # Statistics in float32 whatever the input (bf16/fp16 under autocast), like torch's kernel.
        xf = x.float()
        m = mask.to(xf.dtype)
        count = m.expand(x.shape[0], 1, *x.shape[2:]).sum()  # valid positions per channel
        dims = (0, 2, 3)
        masked = xf * m
        mean = masked.sum(dims) / count
        var = (masked * xf).sum(dims) / count - mean.square()  # E[x^2] - E[x]^2 over valid positions
        var = var.clamp(min=0.0)
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            unbiased = var * (count / (count - 1).clamp(min=1))
            self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
            self.running_var.lerp_(unbiased.detach().to(self.running_var.dtype), self.momentum)
        scale = torch.rsqrt(var + self.eps) * self.weight
        shift = self.bias - mean * scale
        return (xf * scale[None, :, None, None] + shift[None, :, None, None]).to(x.dtype)


def batch_norm_1d(num_features: int) -> nn.BatchNorm1d:
    """A BatchNorm1d with the Keras defaults (used in the heads)."""
    return nn.BatchNorm1d(num_features, eps=BN_EPS, momentum=BN_MOMENTUM)
