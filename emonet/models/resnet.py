"""Wide ResNet over log-mel 'images' (batch, 1, mels, frames), padding-exact in time."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from emonet.models.adapters import ConvUnit
from emonet.models.config import ModelConfig
from emonet.models.masking import strided_lengths, time_mask
from emonet.models.norm import MaskedBatchNorm2d
from emonet.models.task_parts import TaskDict


def downsample_shortcut(x: torch.Tensor, out_ch: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """2x2 average pooling with stride 2 ('same': ceil(size / 2) outputs), then zero channels
    up to ``out_ch``: the shortcut of a block that downsamples.

    As in Keras' 'same' average pooling, positions past an odd-sized edge are left out of
    the average (the last row/column is averaged on its own). ``mask`` (bool [batch, 1, 1,
    frames], None = no padding) does the same for each item's valid frames, so a padded batch
    sees exactly what the shorter input alone would see.
    """
    if mask is None:
        x = F.avg_pool2d(x, 2, ceil_mode=True)
    else:
        m = mask.to(x.dtype)
        total = F.avg_pool2d(x * m, 2, ceil_mode=True, divisor_override=1)
        count = F.avg_pool2d(m.expand(x.shape[0], 1, *x.shape[2:]), 2, ceil_mode=True, divisor_override=1)
        x = total / count.clamp(min=1)
    if out_ch > x.shape[1]:
        x = F.pad(x, (0, 0, 0, 0, 0, out_ch - x.shape[1]))
    return x


class ResidualBlock(nn.Module):
    """drop1 -> unit1 -> ReLU -> drop2 -> unit2 -> + shortcut -> ReLU (post-activation).

    The dropouts act on each unit's input (see ``ConvUnit``: only the adapter's input when the
    unit has adapters). A stride-2 block's shortcut is ``downsample_shortcut``; otherwise the
    identity.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, adapter_type: str, dropout: tuple[float, float]) -> None:
        super().__init__()
        if stride not in (1, 2) or (stride == 1 and in_ch != out_ch):
            raise ValueError(f"unsupported block: stride {stride}, {in_ch} -> {out_ch} channels")
        self.stride = stride
        self.out_ch = out_ch
        self.unit1 = ConvUnit(in_ch, out_ch, stride, adapter_type, dropout[0])
        self.unit2 = ConvUnit(out_ch, out_ch, 1, adapter_type, dropout[1])

    def forward(
        self, x: torch.Tensor, task: str, in_mask: torch.Tensor | None, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """``x`` is zero beyond the valid frames; ``in_mask``/``mask`` are the valid frames at the
        input/output resolution (None: no padding in the batch)."""
        y = F.relu(self.unit1(x, task, mask))
        y = self.unit2(y, task, mask)
        shortcut = downsample_shortcut(x, self.out_ch, in_mask) if self.stride == 2 else x
        return F.relu(y + shortcut)


class WideResNet(nn.Module):
    """Pre-conv unit (f = filters x widen channels, no ReLU), three stages of ``n_blocks``
    blocks of widths 2f, 4f, 8f whose first block has stride 2 (8x downsampling in both axes),
    then per-task BN + ReLU.

    Every unit's output is zeroed beyond each item's valid length (ceil(length / 2) after each
    stride), and in training BatchNorm statistics use the valid positions only, so an item's
    features do not depend on the padding of its batch (eval and train mode).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        width = config.n_filters * config.widen_factor
        adapter_type = config.adapter_type
        self.stem = ConvUnit(1, width, 1, adapter_type)
        stages = []
        in_ch = width
        for out_ch in (2 * width, 4 * width, 8 * width):
            blocks = []
            for b in range(config.n_blocks):
                blocks.append(ResidualBlock(in_ch, out_ch, 2 if b == 0 else 1, adapter_type, config.dropout))
                in_ch = out_ch
            stages.append(nn.ModuleList(blocks))
        self.stages = nn.ModuleList(stages)
        self.final_bn = TaskDict("bn", partial(MaskedBatchNorm2d, in_ch))
        self.out_channels = in_ch

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, task: str) -> tuple[torch.Tensor, torch.Tensor]:
        """x (batch, 1, mels, frames), lengths (batch,) -> features (batch, C, F', T'), lengths'."""
        # Without padding in the batch there is nothing to mask (checked once, outside compile).
        padded = torch.compiler.is_compiling() or bool((lengths < x.shape[-1]).any())
        mask = time_mask(lengths, x.shape[-1])[:, None, None, :] if padded else None
        if mask is not None:
            x = x.masked_fill(~mask, 0.0)
        x = self.stem(x, task, mask)  # no ReLU after the pre-conv (as in the original)
        for stage in self.stages:
            for block in stage:
                in_mask = mask
                if block.stride != 1:
                    lengths = strided_lengths(lengths, block.stride)
                    size = (x.shape[-1] + block.stride - 1) // block.stride
                    mask = time_mask(lengths, size)[:, None, None, :] if padded else None
                x = block(x, task, in_mask, mask)
        return F.relu(self.final_bn[task](x, mask)), lengths  # the pooling ignores padded positions
