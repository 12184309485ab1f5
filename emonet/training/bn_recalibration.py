"""Re-estimating a task's BatchNorm running statistics from its train data (``--recalibrate-bn
N``, an improvement; the original keeps Keras' running averages).

During training a BatchNorm normalises with each batch's own statistics and keeps a running
average (weight 0.01 per batch, Keras' momentum) for evaluation. While the weights still move
fast, that average describes weights of many steps ago: on raw log-mels a two-task demo
pretraining scored chance on test with its running statistics, and 0.958 / 1.000 with the same
weights and batch statistics (bench/README.md, the ablation). Recalibrating replaces the
running statistics of ``task``'s BatchNorms, before every devel scoring, by the plain average of
their statistics over up to ``N`` batches of the task's train partition, forwarded in training
mode with every dropout off and no gradient. The weights do not change; training then goes on
from the new statistics with the usual momentum.

Only the BatchNorms among the task's own parts (its adapters' units, heads, ...: the
``TaskDict`` entries named ``task``) are recalibrated: a BatchNorm shared by several tasks
would see one task's data only."""

from __future__ import annotations

import torch
from torch import nn

from emonet.data.batching import utterance_batches
from emonet.data.crops import Normalizer
from emonet.data.store_access import open_partition, partition_index
from emonet.models.norm import BATCH_NORMS
from emonet.models.task_parts import TaskDict
from emonet.utils.devices import autocast


class _PlainAverage:
    """The weight of batch n (0, 1, 2, ...) in a plain average: 1 / (n + 1)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> float:
        self.n += 1
        return 1.0 / self.n


def task_batchnorms(model: nn.Module, task: str) -> list[nn.Module]:
    """The BatchNorms inside ``task``'s own parts of ``model``, in module order."""
    found: list[nn.Module] = []
    for module in model.modules():
        if isinstance(module, TaskDict) and task in module:
            found += [m for m in module[task].modules() if isinstance(m, BATCH_NORMS)]
    return list(dict.fromkeys(found))


def recalibrate(
    model: nn.Module,
    store,
    task: str,
    norm: Normalizer,
    max_batches: int,
    batch_size: int,
    device: torch.device,
    precision: str = "fp32",
    rank: int = 0,
    world: int = 1,
    window: int | None = None,
) -> int:
    """Replace the running statistics of ``task``'s BatchNorms by their average over the first
    ``max_batches`` batches of its train partition (this rank's share; the caller averages over
    ranks), utterances whole or one ``window``-frame window each, as scored. Returns the number
    of batches used (0: nothing changed: no BatchNorm, or an empty partition)."""
    norms = task_batchnorms(model, task)
    if not norms or max_batches <= 0:
        return 0
    part = open_partition(store, task, "train")
    index = partition_index(part)
    saved = [(bn.num_batches_tracked.clone(), bn.momentum) for bn in norms]
    before = [(bn.running_mean.clone(), bn.running_var.clone()) for bn in norms]
    was_training = {m: m.training for m in model.modules()}
    model.eval()  # dropout off; then only the task's BatchNorms take batch statistics
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # torch's plain (cumulative) average; ours take their weight from:
        bn.next_momentum = _PlainAverage()  # 1, 1/2, 1/3, ...: the same average, for any number of batches
        bn.train()
    used = 0
    try:
        with torch.no_grad():
            for _, x, lengths in utterance_batches(part, index, norm, batch_size, rank, world, window=window):
                with autocast(device, precision):
                    model(x.to(device), lengths.to(device), task)
                used += 1
                if used >= max_batches:
                    break
    finally:
        for bn, (tracked, momentum), (mean, var) in zip(norms, saved, before, strict=True):
            bn.num_batches_tracked.copy_(tracked)  # training goes on with the momentum it had
            bn.momentum = momentum
            del bn.next_momentum  # the class's method again
            if used == 0:
                bn.running_mean.copy_(mean)
                bn.running_var.copy_(var)
        for m, mode in was_training.items():
            m.training = mode
    return used
