"""The original EmoNet's (Keras') initialisers: truncated he_normal for the 3x3 and 1x1 conv
kernels, a normal with std 0.05 for the attention, glorot uniform with zero bias for dense layers."""

from __future__ import annotations

import math

import torch
from torch import nn

# Keras draws a truncated normal (cut at 2 std) with its std divided by this constant, the std
# of a unit normal truncated at +-2, so the values it keeps have the intended std.
TRUNCATED_STD = 0.87962566103423978
ATTENTION_STD = 0.05


def he_normal_(weight: torch.Tensor) -> torch.Tensor:
    """Keras ``he_normal``: values with std sqrt(2 / fan_in) (fan_in = in channels x kernel
    area), drawn from a normal truncated at 2 of its std. In place; returns ``weight``."""
    fan_in = weight[0].numel()
    std = math.sqrt(2.0 / fan_in) / TRUNCATED_STD
    with torch.no_grad():
        return nn.init.trunc_normal_(weight, 0.0, std, -2 * std, 2 * std)


def glorot_dense_(layer: nn.Linear) -> nn.Linear:
    """Keras' Dense default: glorot uniform kernel, zero bias."""
    nn.init.xavier_uniform_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def attention_normal_(layer: nn.Linear) -> nn.Linear:
    """The original's attention weights (W, b and u): normal with std 0.05."""
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0.0, ATTENTION_STD)
    return layer
