"""Scoring a partition with whole utterances: a confusion matrix (all-reduced over DDP ranks,
which makes the metrics exact) and the mean loss."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch

from emonet.data.crops import Normalizer
from emonet.data.store_access import open_partition, partition_index
from emonet.evaluation.metrics import confusion_matrix
from emonet.training.data import eval_batches


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision`` (fp32: none)."""
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def evaluate_partition(
    model,
    store,
    task: str,
    partition: str,
    norm: Normalizer,
    loss_fn,
    batch_size: int,
    device: torch.device,
    precision: str = "fp32",
    rank: int = 0,
    world: int = 1,
) -> tuple[np.ndarray, float]:
    """(confusion matrix int64 [K, K] of the whole partition, mean loss over its labelled items).

    Each rank scores utterances i % world == rank; the matrices and loss sums are summed over
    ranks, so every rank returns the whole partition's figures."""
    was_training = model.training
    model.eval()
    part = open_partition(store, task, partition)
    index = partition_index(part)
    k = len(model.tasks[task])
    cm = np.zeros((k, k), np.int64)
    loss_sum, n = 0.0, 0
    try:
        for x, lengths, labels in eval_batches(part, index, norm, batch_size, rank, world):
            with autocast(device, precision):
                logits = model(x.to(device), lengths.to(device), task)
            pred = logits.argmax(dim=1).cpu().numpy()
            cm += confusion_matrix(labels.numpy(), pred, k)
            keep = labels >= 0
            if keep.any():
                kept = keep.to(device)
                loss_sum += float(loss_fn(logits[kept], labels[keep].to(device))) * int(keep.sum())
                n += int(keep.sum())
    finally:
        model.train(was_training)
    if world > 1:
        cm, loss_sum, n = _all_reduce(cm, loss_sum, n)
    return cm, (loss_sum / n if n else float("nan"))


def _all_reduce(cm: np.ndarray, loss_sum: float, n: int) -> tuple[np.ndarray, float, int]:
    import torch.distributed as dist

    t = torch.from_numpy(cm.astype(np.float64).reshape(-1))
    t = torch.cat([t, torch.tensor([loss_sum, float(n)], dtype=torch.float64)])
    dist.all_reduce(t)
    k = cm.shape[0]
    return t[: k * k].round().to(torch.int64).numpy().reshape(k, k), float(t[-2]), int(round(float(t[-1])))
