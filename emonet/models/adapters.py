"""Conv units: a 3x3 conv shared by all tasks with per-task residual adapters and BatchNorms."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from emonet.errors import ConfigError
from emonet.models.dropout import Dropout
from emonet.models.keras_init import he_normal_
from emonet.models.norm import MaskedBatchNorm2d
from emonet.models.task_parts import TaskDict


def _adapter(in_ch: int, out_ch: int) -> nn.Conv2d:
    """A fresh 1x1 adapter, he_normal as the original's (``reset_to_identity`` makes it a zero
    kernel, the identity). It has stride 1: a strided unit subsamples its input before the
    adapter (``ConvUnit._parallel``)."""
    conv = nn.Conv2d(in_ch, out_ch, 1, bias=False)
    he_normal_(conv.weight)
    return conv


class ConvUnit(nn.Module):
    """Shared 3x3 conv (no bias) with per-task residual adapter and per-task BatchNorm.

    * ``parallel`` (Rebuffi et al. 2018): ``BN_t(conv3x3(x) + conv1x1_t(drop(x)))``.
    * ``series`` (Rebuffi et al. 2017): ``BN_t(z + conv1x1_t(drop(BNa_t(z))))``, ``z = conv3x3(x)``.
    * ``none``: ``BN_t(conv3x3(drop(x)))`` (the adapter-free network of scratch/finetune/last-layer).

    ``drop`` is the unit's input dropout (``-do``): with adapters only the adapter's input is
    dropped, the shared 3x3 sees the undropped input. When the parallel adapter sees the same
    input as the 3x3 (eval, or dropout 0) its kernel is added to the 3x3's centre tap and one
    conv runs (same function, same stride); otherwise two convs run.

    Parameters: ``conv.weight`` (shared), ``adapter.<task>.weight``, ``adapter_bn.<task>.*``
    (series only), ``bn.<task>.*``. The BatchNorms take the length mask (statistics over
    valid positions in training, see ``MaskedBatchNorm2d``).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, adapter_type: str, dropout: float = 0.0) -> None:
        super().__init__()
        self.stride = stride
        self.adapter_type = adapter_type
        self.conv = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        he_normal_(self.conv.weight)
        self.drop = Dropout(dropout)
        if adapter_type == "parallel":
            self.adapter = TaskDict("adapters", partial(_adapter, in_ch, out_ch))
        elif adapter_type == "series":
            self.adapter_bn = TaskDict("bn", partial(MaskedBatchNorm2d, out_ch))
            self.adapter = TaskDict("adapters", partial(_adapter, out_ch, out_ch))
        elif adapter_type != "none":
            raise ConfigError(f"unknown adapter type {adapter_type!r}; choose parallel, series or none")
        self.bn = TaskDict("bn", partial(MaskedBatchNorm2d, out_ch))

    def forward(self, x: torch.Tensor, task: str, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` zero beyond the valid frames; ``mask`` (bool, broadcastable to the output, None
        = no padding): BatchNorm statistics use only its True positions and the output is 0 elsewhere."""
        if self.adapter_type == "parallel":
            y = self._parallel(x, task)
        elif self.adapter_type == "series":
            y = self.conv(x)
            y = y + self.adapter[task](self.drop(self.adapter_bn[task](y, mask)))
        else:
            y = self.conv(self.drop(x))
        return self.bn[task](y, mask)  # 0 outside the mask (MaskedBatchNorm2d zeroes it)

    def _parallel(self, x: torch.Tensor, task: str) -> torch.Tensor:
        kernel = self.adapter[task].weight
        if self.drop.active:
            # A stride-s 1x1 conv reads the input at every s-th row and column: the same
            # function as a stride-1 1x1 conv of the strided slice. torch 2.11's oneDNN
            # backward of the strided form on channels_last input crashes (AVX-512 kernels)
            # or hangs (AVX2 kernels); the slice form runs neither kernel.
            s = self.stride
            return self.conv(x) + F.conv2d(self.drop(x[:, :, ::s, ::s]), kernel)
        # The fused kernel keeps the 3x3 weight's strides (clone preserves them): a kernel in
        # another layout can make torch pick another conv algorithm, and then an identity
        # (zero) adapter would change the output in the last float bits.
        weight = self.conv.weight.clone()
        weight[:, :, 1, 1] += kernel[:, :, 0, 0]
        return F.conv2d(x, weight, None, self.stride, 1)
