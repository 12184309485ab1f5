"""Recurrent encoder over log-mel frames with per-task bottleneck adapters."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from emonet.models.config import ModelConfig
from emonet.models.masking import strided_lengths, time_mask
from emonet.models.task_parts import TaskDict


class BottleneckAdapter(nn.Module):
    """h + up(ReLU(down(LayerNorm(h)))), down to dim/reduction; starts as the identity."""

    def __init__(self, dim: int, reduction: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.down = nn.Linear(dim, max(dim // reduction, 1))
        self.up = nn.Linear(max(dim // reduction, 1), dim)
        self.reset_to_identity()

    def reset_to_identity(self) -> None:
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(F.relu(self.down(self.norm(h))))


class RecurrentEncoder(nn.Module):
    """Optional time pooling -> Dense+ReLU -> LSTM layers (each followed by a per-task
    bottleneck adapter unless adapter_type is none) -> per-task LayerNorm.

    Sequences are packed by their true lengths, so padding never enters the recurrence.
    Parameters: ``proj.*``, ``lstms.<i>.*`` (shared), ``adapters.<i>.<task>.*``, ``layer_norm.<task>.*``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        hidden = config.rnn_hidden
        directions = 2 if config.rnn_bidirectional else 1
        self.time_pool = config.rnn_time_pool
        self.proj = nn.Linear(config.n_mels, hidden)
        self.lstms = nn.ModuleList(
            nn.LSTM(
                hidden if i == 0 else hidden * directions,
                hidden,
                batch_first=True,
                bidirectional=config.rnn_bidirectional,
            )
            for i in range(config.rnn_layers)
        )
        self.out_dim = hidden * directions
        self.adapters = None
        if config.has_adapters:
            self.adapters = nn.ModuleList(
                TaskDict("adapters", partial(BottleneckAdapter, self.out_dim, config.rnn_adapter_reduction))
                for _ in range(config.rnn_layers)
            )
        self.layer_norm = TaskDict("norm", partial(nn.LayerNorm, self.out_dim))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, task: str) -> tuple[torch.Tensor, torch.Tensor]:
        """x (batch, frames, mels) -> (batch, frames', out_dim), lengths'."""
        x = x.masked_fill(~time_mask(lengths, x.shape[1])[..., None], 0.0)
        if self.time_pool > 1:  # average non-overlapping windows; a partial last window counts zeros
            p = self.time_pool
            x = F.pad(x, (0, 0, 0, (-x.shape[1]) % p))
            x = x.view(x.shape[0], x.shape[1] // p, p, x.shape[2]).mean(dim=2)
            lengths = strided_lengths(lengths, p)
        h = F.relu(self.proj(x))
        size = h.shape[1]
        cpu_lengths = lengths.cpu()
        for i, lstm in enumerate(self.lstms):
            packed = pack_padded_sequence(h, cpu_lengths, batch_first=True, enforce_sorted=False)
            h, _ = pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=size)
            if self.adapters is not None:
                h = self.adapters[i][task](h)
        return self.layer_norm[task](h), lengths
