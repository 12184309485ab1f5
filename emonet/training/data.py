"""The public data path: ``batches(store, task, ...)``, as the trainer draws them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from emonet.data.batching import utterance_batches
from emonet.data.normalization import task_normalizer
from emonet.data.store_access import as_store, open_partition, partition_index
from emonet.errors import ConfigError
from emonet.training.streams import StreamSpec, epoch_stream


def window_frames(store, seconds: float | None) -> int | None:
    """Frames of a ``seconds`` window at the store's hop (None: no window, whole utterances)."""
    if seconds is None:
        return None
    if not seconds > 0:
        raise ConfigError(f"--window must be > 0 seconds, got {seconds}")
    fc = store.feature_config
    return 1 + int(round(seconds * fc["sample_rate"])) // int(fc["hop_length"])


def score_window(config, store) -> int | None:
    """The window devel and test are scored on, in frames: one window per clip with -w (the
    original EmoNet's), None (whole utterances) without -w or with ``--score-whole``."""
    return None if config.score_whole else window_frames(store, config.window)


def batches(
    store,
    task: str,
    partition: str = "train",
    batch_size: int = 64,
    window: float | None = 4.0,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    band_norm: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One epoch of batches of ``task``'s ``partition``, as the trainer draws them.

    Args:
        store: a FeatureStore or its path.
        task, partition: what to read.
        batch_size: utterances per batch (the last training batch may be smaller; a single
            left-over utterance is dropped, as training BatchNorms need two items).
        window: training crop in seconds (a random crop per utterance, shorter clips whole and
            zero-padded), or None for whole utterances in storage order (evaluation).
        shuffle: shuffle the shard order and, through a buffer, the utterances.
        seed, epoch: the same (seed, epoch) gives the same batches.
        band_norm: standardise each mel band with the task's train statistics (``--band-norm``);
            False (the original's): raw log-mels.

    Yields:
        (x float32 [batch, frames, mels] (with ``band_norm`` standardised per band),
        lengths int64 [batch] (valid frames), labels int64 [batch] (-1: unlabelled)).
    """
    store = as_store(store)
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    part, index, norm = _opened(store, task, partition, band_norm)
    if window is None:
        for indices, x, lengths in utterance_batches(part, index, norm, batch_size):
            yield x, lengths, torch.from_numpy(index.label_ids[indices])
        return
    spec = StreamSpec(task, batch_size, window_frames(store, window), seed, shuffle, band_norm=band_norm)
    yield from epoch_stream(part, index, spec, norm, epoch, 0, 1)


_OPENED: dict[tuple, tuple] = {}


def _opened(store, task: str, partition: str, band_norm: bool):
    """(partition, index, normaliser), opened once per process while the partition on disk
    stays the same (its folder's change time is part of the key): opening costs ~10 ms."""
    path = Path(store.path) / task / partition
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None
    key = (str(path), stamp, band_norm)
    if key not in _OPENED:
        if len(_OPENED) > 32:
            _OPENED.clear()
        part = open_partition(store, task, partition)
        _OPENED[key] = (part, partition_index(part), task_normalizer(store, task, band_norm))
    return _OPENED[key]
