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

    def folded(self, task: str) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`fold` of ``task``, kept until a tensor it was made from changes (an optimiser
        step, ``load_state_dict`` or ``.to()``: each bumps the tensor's version or moves it), so
        scoring does not fold again per batch (about 80 ms per forward of the default cnn)."""
        sources = [self.conv.weight, *self.bn[task].parameters(), *self.bn[task].buffers()]
        if self.adapter_type != "none":
            sources += [self.adapter[task].weight]
        if self.adapter_type == "series":
            sources += [*self.adapter_bn[task].parameters(), *self.adapter_bn[task].buffers()]
        key = tuple((t.data_ptr(), t._version, t.dtype) for t in sources)
        cache = self.__dict__.setdefault("_folded", {})  # not a module attribute: never in the state dict
        if task not in cache or cache[task][0] != key:
            cache[task] = (key, self.fold(task))
        return cache[task][1]

    @torch.no_grad()
    def fold(self, task: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight, bias) of the one 3x3 conv that computes this unit in eval mode at the valid
        positions: the adapter merged into the 3x3 kernel and the BatchNorm's running statistics
        and affine folded into it (``BN(y) = y * s + (beta - mean * s)``, ``s = gamma / sqrt(var + eps)``).

        * parallel: the adapter's 1x1 kernel is added to the 3x3's centre tap (as ``_parallel``).
        * series: ``z + A(BNa(z))`` is the 1x1 map ``I + A diag(s_a)`` of ``z`` plus ``A t_a``,
          composed with the 3x3 kernel (BNa zeroes padded positions, which the final mask zeroes anyway).
        * none: the 3x3 kernel alone.

        """
        weight = self.conv.weight.clone()
        bias = torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)
        if self.adapter_type == "parallel":
            weight[:, :, 1, 1] += self.adapter[task].weight[:, :, 0, 0]
        elif self.adapter_type == "series":
            a = self.adapter[task].weight[:, :, 0, 0]
            scale, shift = _bn_affine(self.adapter_bn[task])
            mix = torch.eye(a.shape[0], dtype=a.dtype, device=a.device) + a * scale[None, :]
            weight = torch.einsum("oc,cikl->oikl", mix, weight).contiguous(memory_format=_layout(self.conv.weight))
            bias = a @ shift
        scale, shift = _bn_affine(self.bn[task])
        return weight.mul_(scale[:, None, None, None]), bias.mul_(scale).add_(shift)


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of an eval-mode BatchNorm: ``bn(y) = y * scale + shift`` per channel."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale, shift


def _layout(t: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if t.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
