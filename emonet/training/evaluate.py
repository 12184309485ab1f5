"""Scoring a partition during training (whole utterances, or one window per clip with -w): a
confusion matrix (all-reduced over DDP ranks, which makes the metrics exact) and the mean
loss. The forward loop is the one of :func:`emonet.evaluation.scoring.score_batches`, as
``emonet evaluate`` uses it."""

from __future__ import annotations

import numpy as np
import torch

from emonet.data.batching import utterance_batches
from emonet.data.crops import Normalizer
from emonet.data.store_access import open_partition, partition_index
from emonet.evaluation.metrics import confusion_matrix
from emonet.evaluation.scoring import score_batches


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
    window: int | None = None,
) -> tuple[np.ndarray, float]:
    """(confusion matrix int64 [K, K] of the whole partition, mean loss over its labelled items),
    each clip scored whole (``window`` None) or on one ``window``-frame window
    (:func:`emonet.data.crops.scoring_windows`).

    Each rank scores utterances i % world == rank; the matrices and loss sums are summed over
    ranks, so every rank returns the whole partition's figures."""
    part = open_partition(store, task, partition)
    index = partition_index(part)
    k = len(model.tasks[task])
    cm = np.zeros((k, k), np.int64)
    loss_sum, n = 0.0, 0
    batches = utterance_batches(part, index, norm, batch_size, rank, world, window=window)
    for indices, logits in score_batches(model, batches, task, device, precision):
        labels = torch.from_numpy(index.label_ids[indices])
        cm += confusion_matrix(labels.numpy(), logits.argmax(dim=1).cpu().numpy(), k)
        keep = labels >= 0
        if keep.any():
            with torch.no_grad():
                loss_sum += float(loss_fn(logits[keep.to(device)], labels[keep].to(device))) * int(keep.sum())
            n += int(keep.sum())
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
