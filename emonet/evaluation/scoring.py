"""Scoring one partition with a model: whole utterances, batched with their lengths (masked),
normalised with given statistics; the class probabilities of every utterance.

The batches are formed as the trainer's evaluation forms them (utterances of similar length
together, sorted within groups of 1024), but the frames are read without the trainer's
frame cache: that cache is keyed by partition, not by normalisation statistics, and a
checkpoint's statistics may differ from the store's.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from emonet.data.crops import Normalizer, gather_windows, normalize, with_pad_row
from emonet.data.store_access import PartitionIndex, read_frames
from emonet.training.evaluate import autocast


def utterance_batches(
    part, index: PartitionIndex, norm: Normalizer, batch_size: int, group: int = 1024
) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """Whole utterances of ``part`` zero-padded per batch.

    Args:
        part: an opened store partition.
        index: its :class:`PartitionIndex`.
        norm: the normalisation (``(x - mean) / std`` per mel band; padding stays zero).
        batch_size: utterances per batch.
        group: utterances read at once; sorted by length within it.

    Yields:
        (utterance indices int64 [b], x float32 [b, frames, mels], lengths int64 [b]).
    """
    for g0 in range(0, len(index), group):
        ids = np.arange(g0, min(g0 + group, len(index)))
        lo, hi = int(index.offsets[ids[0]]), int(index.offsets[ids[-1] + 1])
        frames = with_pad_row([normalize(read_frames(part, lo, hi), norm)])
        ids = ids[np.argsort(index.lengths[ids], kind="stable")]
        for i in range(0, len(ids), batch_size):
            sel = ids[i : i + batch_size]
            valid = np.maximum(index.lengths[sel], 1)
            x, lengths = gather_windows(frames, index.offsets[sel] - lo, valid, int(valid.max()))
            yield sel, x, lengths


@torch.no_grad()
def score_partition(
    model,
    part,
    index: PartitionIndex,
    task: str,
    norm: Normalizer,
    batch_size: int,
    device: torch.device,
    precision: str = "fp32",
) -> tuple[np.ndarray, np.ndarray]:
    """(class probabilities float32 [n utterances, n classes], predicted class ids int64 [n]:
    the argmax of the logits, as the trainer scores) of ``task``'s head for every utterance
    of ``part``, in storage order."""
    was_training = model.training
    model.eval()
    probs = np.zeros((len(index), len(model.tasks[task])), np.float32)
    pred = np.zeros(len(index), np.int64)
    try:
        for sel, x, lengths in utterance_batches(part, index, norm, batch_size):
            with autocast(device, precision):
                logits = model(x.to(device), lengths.to(device), task)
            probs[sel] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            pred[sel] = logits.argmax(dim=1).cpu().numpy()
    finally:
        model.train(was_training)
    return probs, pred
