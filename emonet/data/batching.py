"""Batches for scoring (devel and test during training, ``emonet evaluate``, ``emonet
predict``): whole utterances, or with a window the original EmoNet's one window per clip
(:func:`emonet.data.crops.scoring_windows`), zero-padded per batch, with their lengths for
masking.

Every scorer batches through here, so the window, padding and normalisation are the same for
all of them.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from emonet.data.crops import Normalized, Normalizer, gather_windows, scoring_windows, with_pad_row
from emonet.data.store_access import PartitionIndex, read_frames_cached

Batch = tuple[np.ndarray, torch.Tensor, torch.Tensor]  # (indices int64 [b], x float32 [b, T, mels], lengths [b])


def utterance_batches(
    part,
    index: PartitionIndex,
    norm: Normalizer,
    batch_size: int,
    rank: int = 0,
    world: int = 1,
    group: int = 1024,
    window: int | None = None,
) -> Iterator[Batch]:
    """The utterances of ``part`` (utterance i goes to rank i % world) as scored: whole, or
    one ``window``-frame window each, zero-padded per batch.

    Utterances of similar length are batched together (sorted within groups of ``group``) to
    pad less; with a padding-exact model the scores do not depend on the batching. Frames go
    through the process's frame cache, keyed by the normalisation's statistics too, so two
    normalisations of one partition (a run's and a checkpoint's) never share frames.

    Args:
        part: an opened store partition.
        index: its :class:`PartitionIndex` (labels: ``index.label_ids[indices]``).
        norm: the normalisation (``(x - mean) / std`` per mel band; padding stays zero).
        batch_size: utterances per batch.
        rank, world: this process's share of the utterances.
        group: utterances read at once; sorted by length within it.
        window: None: whole utterances; frames: one window per utterance
            (:func:`~emonet.data.crops.scoring_windows`).

    Yields:
        (utterance indices int64 [b], x float32 [b, frames, mels], lengths int64 [b]).
    """
    mine = np.flatnonzero(np.arange(len(index)) % world == rank)
    for g0 in range(0, len(mine), group):
        ids = mine[g0 : g0 + group]
        lo, hi = int(index.offsets[ids[0]]), int(index.offsets[ids[-1] + 1])
        frames = with_pad_row([read_frames_cached(part, lo, hi, Normalized(norm))])
        ids = ids[np.argsort(index.lengths[ids], kind="stable")]
        for i in range(0, len(ids), batch_size):
            sel = ids[i : i + batch_size]
            offsets, valid = scoring_windows(index.lengths[sel], window)
            x, lengths = gather_windows(frames, index.offsets[sel] - lo + offsets, valid, int(valid.max()))
            yield sel, x, lengths


def padded_batch(pieces: list[torch.Tensor], window: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised utterances (float32 [frames, mels] each), whole or one ``window`` each as
    :func:`utterance_batches` takes them, zero-padded into one batch: (x float32 [n, longest,
    mels], lengths int64 [n])."""
    lengths = np.asarray([len(p) for p in pieces], np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    offsets, valid = scoring_windows(lengths, window)
    starts = np.where(lengths > 0, starts + offsets, int(lengths.sum()))  # an empty utterance: one row of padding
    return gather_windows(with_pad_row(pieces), starts, valid, int(valid.max()))
