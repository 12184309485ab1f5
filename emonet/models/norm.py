"""BatchNorm with the original's Keras settings and masked batch statistics for padded batches."""

from __future__ import annotations

import torch
from torch import nn

from emonet.models.dtypes import at_least_float32

# Keras BatchNormalization defaults (momentum 0.99 on the running value, eps 1e-3). torch's
# momentum is the weight of the new batch, so 1 - 0.99.
BN_MOMENTUM = 0.01
BN_EPS = 1e-3


def warm_momentum(seen: int) -> float:
    """The weight of the next batch in the running statistics after ``seen`` batches: Keras'
    0.01, except that the first batches are averaged plainly (1, 1/2, 1/3, ...) until their
    weight falls to 0.01 (after 100 batches). Without this start the running statistics keep
    weight 0.99**n of their initial values (mean 0, variance 1) after n batches, still 37%
    after 100 steps, and a short run evaluates with statistics far from its features
    (bench/README.md, "Models with the original's network shape": demo devel UAR of acted 0.50 instead of 0.875)."""
    return max(BN_MOMENTUM, 1.0 / (seen + 1))


# Every BatchNorm torch has, by its public classes (MaskedBatchNorm2d is a BatchNorm2d).
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class WarmStartMomentum:
    """Mixin for torch BatchNorms: each training batch updates the running statistics with
    :func:`warm_momentum` (the count lives in Python, read from ``num_batches_tracked`` once
    after construction or loading); ``momentum`` itself stays the Keras value."""

    _seen: int | None = None

    def next_momentum(self) -> float:
        if self._seen is None:
            self._seen = int(self.num_batches_tracked)
        momentum = warm_momentum(self._seen)
        self._seen += 1
        return momentum

    def forward_with_warm_momentum(self, x: torch.Tensor) -> torch.Tensor:
        """torch's own BatchNorm forward, with this batch's warm-start momentum in training."""
        if not (self.training and self.track_running_stats):
            return super().forward(x)
        self.momentum = self.next_momentum()
        try:
            return super().forward(x)
        finally:
            self.momentum = BN_MOMENTUM

    def _load_from_state_dict(self, *args, **kwargs):
        self._seen = None  # re-read from the loaded num_batches_tracked
        super()._load_from_state_dict(*args, **kwargs)


class MaskedBatchNorm2d(WarmStartMomentum, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training statistics come from the valid positions only.

    ``forward(x, mask)``: ``mask`` is a bool tensor broadcastable to ``x`` ([batch, 1, 1, frames]
    for time padding) or None (every position is valid: plain BatchNorm). In training with a
    mask, the batch mean and (biased) variance are taken over the valid positions of every
    item, and the running statistics are updated from them (unbiased variance, like torch),
    so a short clip's output and the running statistics do not depend on what it was batched
    with. In eval mode the running statistics are used. The output is 0 outside the mask.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` [batch, C, H, W]; ``mask`` bool broadcastable to it or None. With a mask the
        output is 0 outside it (train and eval)."""
        if mask is None:
            return self.forward_with_warm_momentum(x)
        if not self.training:
            return super().forward(x).mul_(mask.to(x.dtype))  # BN's backward saves no output: in place is safe
        xf = at_least_float32(x)  # statistics in float32 under bf16/fp16 autocast, like torch's kernel
        m = mask.to(xf.dtype)
        out, mean, var, count = _MaskedBatchNorm.apply(xf, m, self.weight, self.bias, self.eps)
        with torch.no_grad():
            momentum = self.next_momentum()
            self.num_batches_tracked.add_(1)
            unbiased = var * (count / (count - 1).clamp(min=1))
            self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
            self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        return out.to(x.dtype)


def _per_channel(v: torch.Tensor) -> torch.Tensor:
    return v[None, :, None, None]


class _MaskedBatchNorm(torch.autograd.Function):
    """Training-mode BatchNorm over the positions where ``m`` is 1, in few passes over the data.

    The same function as the literal autograd form (z = x*m; mean and E[z^2] - mean^2 over the
    valid positions; out = (z*scale + shift)*m) with a hand-written backward: the literal form
    made autograd keep and revisit about ten full-size temporaries per BatchNorm, which cost a
    quarter of a padded training step (bench/README.md, "Training speed on the CPU").
    Returns (out, mean, biased var, count); only ``out`` has a gradient.
    """

    @staticmethod
    def forward(ctx, x, m, weight, bias, eps):
        z = x * m  # 0 at padded positions (keeps x's memory format)
        count = m.expand(x.shape[0], 1, *x.shape[2:]).sum()  # valid positions per channel
        dims = (0, 2, 3)
        mean = z.sum(dims) / count
        var = ((z * z).sum(dims) / count - mean.square()).clamp(min=0.0)  # E[x^2] - E[x]^2 over valid positions
        invstd = torch.rsqrt(var + eps)
        scale = invstd * weight
        shift = bias - mean * scale
        # out = z*scale + shift*m in one pass, written in z's layout (z is 0 where m is).
        out = torch.addcmul(_per_channel(shift) * m, z, _per_channel(scale), out=torch.empty_like(z))
        ctx.save_for_backward(z, m, weight, mean, invstd, count)
        ctx.mark_non_differentiable(mean, var, count)
        return out, mean, var, count

    @staticmethod
    def backward(ctx, g, *_):
        z, m, weight, mean, invstd, count = ctx.saved_tensors
        dims = (0, 2, 3)
        gm = g * m  # the output is constant (0) outside the mask
        sum_g = gm.sum(dims)
        sum_gxc = (gm * z).sum(dims) - mean * sum_g  # sum over valid positions of g * (z - mean)
        a = weight * invstd
        k = a * invstd.square() * sum_gxc / count
        c = k * mean - a * sum_g / count
        # dx = m * (a*g - a*mean(g) - k*(z - mean)) = a*gm - k*z + c*m  (z and gm are 0 outside m)
        dx = torch.mul(z, _per_channel(-k), out=torch.empty_like(z))
        dx.addcmul_(gm, _per_channel(a)).add_(_per_channel(c) * m)
        grad_w = sum_gxc * invstd if ctx.needs_input_grad[2] else None
        grad_b = sum_g if ctx.needs_input_grad[3] else None
        return dx, None, grad_w, grad_b, None


class BatchNorm1d(WarmStartMomentum, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` with the Keras settings and the warm-start momentum."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_warm_momentum(x)


def batch_norm_1d(num_features: int) -> nn.BatchNorm1d:
    """A BatchNorm1d with the Keras defaults (used in the heads)."""
    return BatchNorm1d(num_features, eps=BN_EPS, momentum=BN_MOMENTUM)
