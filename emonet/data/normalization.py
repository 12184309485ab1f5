"""What a task's log-mels are standardised with: nothing, as in the original EmoNet (raw
log-mels; the statistics are the identity, mean 0 and std 1), or with ``band_norm`` each mel
band's mean and std over the task's train partition (an improvement, ``--band-norm``).

The statistics a run used travel in its checkpoints (``norm_stats``), so evaluation and
prediction apply exactly the training's; identity statistics change no value (x - 0) * 1.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from emonet.data.crops import Normalizer
from emonet.errors import StoreError


def task_stats(store, task: str, band_norm: bool) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) float32 [n_mels] the task's features are standardised with."""
    if not band_norm:
        n_mels = int(store.feature_config["n_mels"])
        return np.zeros(n_mels, np.float32), np.ones(n_mels, np.float32)
    try:
        return store.normalization(task)
    except KeyError:
        raise StoreError(
            f"task {task!r} in {store.path} has no train partition, so no normalisation statistics; "
            "extract its train csv"
        ) from None


def task_normalizer(store, task: str, band_norm: bool) -> Normalizer:
    """The task's :class:`Normalizer` (see :func:`task_stats`)."""
    return Normalizer(*task_stats(store, task, band_norm))


def norm_stats(stores: Mapping[str, object], band_norm: bool) -> dict[str, dict[str, list[float]]]:
    """task -> {"mean", "std"} (one value per mel band) for a checkpoint, from task -> store."""
    out = {}
    for task, store in stores.items():
        mean, std = task_stats(store, task, band_norm)
        out[task] = {"mean": np.asarray(mean).tolist(), "std": np.asarray(std).tolist()}
    return out
