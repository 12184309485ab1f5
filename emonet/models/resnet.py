"""Wide ResNet over log-mel 'images' (batch, 1, mels, frames), padding-exact in time."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from emonet.models.adapters import ConvUnit
from emonet.models.config import ModelConfig
from emonet.models.dropout import Dropout
from emonet.models.masking import strided_lengths, time_mask
from emonet.models.task_parts import TaskDict


def _shortcut(x: torch.Tensor, stride: int, out_ch: int) -> torch.Tensor:
    """Identity, or 2x2 average pooling plus zero channels when the block downsamples.

    Odd sizes are zero-padded to even first, so the pooled size equals the strided conv's
    (ceil) and a padded batch sees exactly what a shorter input alone would see.
    """
    if stride == 2:
        x = F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
        x = F.avg_pool2d(x, 2)
    elif stride != 1:
        raise ValueError(f"unsupported stride {stride}")
    if out_ch > x.shape[1]:
        x = F.pad(x, (0, 0, 0, 0, 0, out_ch - x.shape[1]))
    return x


class ResidualBlock(nn.Module):
    """unit1 -> ReLU -> dropout1 -> unit2 -> dropout2 -> + shortcut -> ReLU.

    The two dropout positions follow the seed ("after first and second convolution");
    dropout2 acts on the residual branch before the addition.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, adapter_type: str, dropout: tuple[float, float]) -> None:
        super().__init__()
        self.stride = stride
        self.out_ch = out_ch
        self.unit1 = ConvUnit(in_ch, out_ch, stride, adapter_type)
        self.drop1 = Dropout(dropout[0])
        self.unit2 = ConvUnit(out_ch, out_ch, 1, adapter_type)
        self.drop2 = Dropout(dropout[1])

    def forward(self, x: torch.Tensor, task: str, mask: torch.Tensor | None) -> torch.Tensor:
        """``x`` is zero beyond the valid frames; ``mask`` is for the output resolution
        (None: no padding in the batch)."""
        y = self.drop1(F.relu(self.unit1(x, task, mask)))
        y = self.drop2(self.unit2(y, task, mask))
        return F.relu(y + _shortcut(x, self.stride, self.out_ch))


class WideResNet(nn.Module):
    """Stem unit, three stages of ``n_blocks`` blocks (widths w, 2w, 4w; stages 2 and 3
    start with stride 2), then per-task BN + ReLU.

    Every unit's output is zeroed beyond each item's valid length (ceil(length / stride)),
    so in eval mode an item's features do not depend on the padding of its batch.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        width = config.n_filters * config.widen_factor
        adapter_type = config.adapter_type
        self.stem = ConvUnit(1, width, 1, adapter_type)
        stages = []
        in_ch = width
        for s, out_ch in enumerate((width, 2 * width, 4 * width)):
            blocks = []
            for b in range(config.n_blocks):
                stride = 2 if (s > 0 and b == 0) else 1
                blocks.append(ResidualBlock(in_ch, out_ch, stride, adapter_type, config.dropout))
                in_ch = out_ch
            stages.append(nn.ModuleList(blocks))
        self.stages = nn.ModuleList(stages)
        self.final_bn = TaskDict("bn", partial(nn.BatchNorm2d, in_ch))
        self.out_channels = in_ch

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, task: str) -> tuple[torch.Tensor, torch.Tensor]:
        """x (batch, 1, mels, frames), lengths (batch,) -> features (batch, C, F', T'), lengths'."""
        # Without padding in the batch there is nothing to mask (checked once, outside compile).
        padded = torch.compiler.is_compiling() or bool((lengths < x.shape[-1]).any())
        mask = time_mask(lengths, x.shape[-1])[:, None, None, :] if padded else None
        if mask is not None:
            x = x.masked_fill(~mask, 0.0)
        x = F.relu(self.stem(x, task, mask))
        for stage in self.stages:
            for block in stage:
                if block.stride != 1:
                    lengths = strided_lengths(lengths, block.stride)
                    size = (x.shape[-1] + block.stride - 1) // block.stride
                    mask = time_mask(lengths, size)[:, None, None, :] if padded else None
                x = block(x, task, mask)
        x = F.relu(self.final_bn[task](x))
        return x, lengths
