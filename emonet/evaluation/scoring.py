"""The one forward loop that scores utterances with a model: training's devel and test
scoring, ``emonet evaluate`` and ``emonet predict`` all go through :func:`score_batches`.

Batches are ``(indices, x, lengths)`` as :mod:`emonet.data.batching` makes them; the model
runs in eval mode, without gradients, under the autocast of ``precision``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from emonet.utils.devices import autocast


@torch.no_grad()
def score_batches(
    model, batches: Iterable[tuple], task: str, device: torch.device, precision: str = "fp32"
) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """(indices int64 [b], logits [b, classes] on ``device``, in the autocast dtype) of
    ``task``'s head for each batch. The model is in eval mode while this runs, and back in
    its own mode when it ends (also when the caller stops early)."""
    was_training = model.training
    model.eval()
    try:
        for indices, x, lengths in batches:
            with autocast(device, precision):
                logits = model(x.to(device), lengths.to(device), task)
            yield np.asarray(indices), logits
    finally:
        model.train(was_training)


@dataclass
class Scores:
    """Every utterance's scores, in input order (row i: the item with index i)."""

    logits: np.ndarray  # float32 [n, classes]
    probabilities: np.ndarray  # float32 [n, classes]: softmax of the logits
    predictions: np.ndarray  # int64 [n]: argmax of the logits

    @property
    def finite(self) -> bool:
        """Whether every probability is a number (broken weights give NaN)."""
        return bool(np.isfinite(self.probabilities).all())


def score(
    model, batches: Iterable[tuple], task: str, device: torch.device, precision: str = "fp32", n: int | None = None
) -> Scores:
    """``task``'s logits, probabilities and argmax predictions of every item of ``batches``,
    placed by the batches' indices (``n`` items in all; default: one past the largest index).

    The argmax is taken of the logits as the model gives them (as the trainer scores)."""
    k = len(model.tasks[task])
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for indices, logits in score_batches(model, batches, task, device, precision):
        pred = logits.argmax(dim=1).cpu().numpy()
        rows.append((indices, logits.float().cpu().numpy(), pred))
    size = n if n is not None else max((int(i.max()) + 1 for i, _, _ in rows if len(i)), default=0)
    out = Scores(np.zeros((size, k), np.float32), np.zeros((size, k), np.float32), np.zeros(size, np.int64))
    for indices, logits, pred in rows:
        out.logits[indices] = logits
        out.predictions[indices] = pred
    if size:
        out.probabilities[:] = torch.softmax(torch.from_numpy(out.logits), dim=-1).numpy()
    return out
