"""Compute dtypes for reductions that must not run in half precision."""

from __future__ import annotations

import torch


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when it is a half type (bf16/fp16 under autocast), else unchanged:
    softmax and BatchNorm statistics run in float32 like torch's own kernels, and float64
    stays float64 (the tests compare computations in float64)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
