"""Length bookkeeping for padded batches: valid-frame masks and lengths after strides."""

from __future__ import annotations

import torch


def time_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """Bool [batch, size]: True where the frame index is below the item's length."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


def strided_lengths(lengths: torch.Tensor, stride: int) -> torch.Tensor:
    """Valid length after a stride-``stride`` conv with 'same' padding: ceil(length / stride)."""
    if stride == 1:
        return lengths
    return torch.div(lengths + (stride - 1), stride, rounding_mode="floor")
