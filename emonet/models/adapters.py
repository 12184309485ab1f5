"""Conv units: a 3x3 conv shared by all tasks with per-task residual adapters and BatchNorms."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from emonet.models.task_parts import TaskDict, reset_to_identity


def _adapter(in_ch: int, out_ch: int, stride: int) -> nn.Conv2d:
    """A fresh 1x1 adapter: zero kernel, so a new task starts as the shared network."""
    conv = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)
    reset_to_identity(conv)
    return conv


class ConvUnit(nn.Module):
    """Shared 3x3 conv (no bias) with per-task residual adapter and per-task BatchNorm.

    * ``parallel`` (Rebuffi et al. 2018): ``BN_t(conv3x3(x) + conv1x1_t(x))``. The 1x1 kernel
      is added to the centre tap of the 3x3 kernel and one conv is run: the same function
      (same stride, same sampled positions), one conv instead of two.
    * ``series`` (Rebuffi et al. 2017): ``BN_t(z + conv1x1_t(BNa_t(z)))`` with ``z = conv3x3(x)``.
    * ``none``: ``BN_t(conv3x3(x))`` (the adapter-free network of scratch/finetune/last-layer).

    Parameters: ``conv.weight`` (shared), ``adapter.<task>.weight``, ``adapter_bn.<task>.*``
    (series only), ``bn.<task>.*``.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, adapter_type: str) -> None:
        super().__init__()
        self.stride = stride
        self.adapter_type = adapter_type
        self.conv = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        if adapter_type == "parallel":
            self.adapter = TaskDict("adapters", partial(_adapter, in_ch, out_ch, stride))
        elif adapter_type == "series":
            self.adapter_bn = TaskDict("bn", partial(nn.BatchNorm2d, out_ch))
            self.adapter = TaskDict("adapters", partial(_adapter, out_ch, out_ch, 1))
        elif adapter_type != "none":
            raise ValueError(f"unknown adapter type {adapter_type!r}")
        self.bn = TaskDict("bn", partial(nn.BatchNorm2d, out_ch))

    def forward(self, x: torch.Tensor, task: str, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask`` (bool, broadcastable to the output): positions where it is False are set to 0."""
        if self.adapter_type == "parallel":
            weight = self.conv.weight + F.pad(self.adapter[task].weight, (1, 1, 1, 1))
            y = F.conv2d(x, weight, None, self.stride, 1)
        else:
            y = self.conv(x)
            if self.adapter_type == "series":
                y = y + self.adapter[task](self.adapter_bn[task](y))
        y = self.bn[task](y)
        if mask is not None:
            # A multiply (not masked_fill): its gradient keeps the channels_last layout, which
            # BatchNorm's backward needs to stay on its fast path. In place: BN's output is not saved.
            y = y.mul_(mask.to(y.dtype))
        return y
