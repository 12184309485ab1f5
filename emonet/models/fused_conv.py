"""One convolution with its bias, residual add and ReLU: the inference form of a conv unit.

On the CPU with float32 tensors (no autocast) this is oneDNN's fused convolution with
post-ops, the kernel torch's inductor emits for the same pattern
(``torch.ops.mkldnn._convolution_pointwise``): the bias, the residual and the ReLU are
applied while the output tile is still in cache, instead of three more passes over the
output. Elsewhere (CUDA, autocast, a torch without the op) it is ``F.conv2d`` followed by
the same operations in place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_POINTWISE = getattr(torch.ops.mkldnn, "_convolution_pointwise", None) if torch.backends.mkldnn.is_available() else None


def _fused(x: torch.Tensor) -> bool:
    return (
        _POINTWISE is not None
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
    )


def conv_bias_act(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    stride: int,
    *,
    relu: bool,
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """``relu?(conv3x3(x, weight, stride, padding 1) + bias + residual?)`` (no gradients)."""
    pad, dil = [1, 1], [1, 1]
    if _fused(x):
        if residual is None:
            return _POINTWISE(x, weight, bias, pad, [stride, stride], dil, 1, "relu" if relu else "none", [], "")
        if residual.shape[1] < weight.shape[0]:  # a downsampling shortcut: zero channels up to the output's
            residual = F.pad(residual, (0, 0, 0, 0, 0, weight.shape[0] - residual.shape[1]))
        other = residual.contiguous(memory_format=_format(x))
        return _POINTWISE.binary(
            x, other, weight, bias, pad, [stride, stride], dil, 1, "add", None, "relu" if relu else None, [], None
        )
    y = F.conv2d(x, weight, bias, stride, 1)
    if residual is not None:
        c = residual.shape[1]  # a downsampling shortcut has fewer channels: the rest are zero
        y[:, :c] += residual
    return y.relu_() if relu else y


def _format(x: torch.Tensor) -> torch.memory_format:
    return (
        torch.channels_last
        if x.is_contiguous(memory_format=torch.channels_last) and x.dim() == 4
        else torch.contiguous_format
    )
