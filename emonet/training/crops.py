"""Vectorised batch assembly: random windows or whole utterances cut from frames in memory,
normalised on the fly and zero-padded, with their true lengths."""

from __future__ import annotations

import numpy as np


class Normalizer:
    """Per-mel-band standardisation with the store's train statistics (never baked into the
    store): ``(x - mean) / std``; padding stays exactly zero."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean = np.asarray(mean, np.float32)
        self.inv_std = (1.0 / np.maximum(np.asarray(std, np.float32), 1e-5)).astype(np.float32)

    def apply(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Normalise float32 ``x`` [batch, frames, mels] in place and zero the frames beyond ``lengths``."""
        x -= self.mean
        x *= self.inv_std
        pad = np.arange(x.shape[1])[None, :] >= lengths[:, None]
        x[pad] = 0.0
        return x


def random_windows(
    frames: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    window: int,
    rng: np.random.Generator,
    norm: Normalizer,
) -> tuple[np.ndarray, np.ndarray]:
    """One random ``window``-frame crop per utterance (shorter ones whole, zero-padded).

    Args:
        frames: float16 [total, mels], the frames of every utterance in memory.
        starts, lengths: int64 [n], each utterance's first frame in ``frames`` and its length.
        window: crop length in frames.
        rng: the generator that draws the crop offsets.
        norm: the normaliser applied to the result.

    Returns:
        (x float32 [n, window, mels], true lengths int64 [n]).
    """
    lengths = np.maximum(lengths.astype(np.int64), 1)
    slack = np.maximum(lengths - window, 0)
    offset = np.floor(rng.random(len(lengths)) * (slack + 1)).astype(np.int64)
    valid = np.minimum(lengths, window)
    steps = np.arange(window, dtype=np.int64)[None, :]
    last = (starts + lengths - 1)[:, None]
    idx = np.minimum(starts[:, None] + offset[:, None] + steps, last)
    x = frames[idx].astype(np.float32)
    return norm.apply(x, valid), valid


def whole_utterances(
    frames: np.ndarray, starts: np.ndarray, lengths: np.ndarray, norm: Normalizer
) -> tuple[np.ndarray, np.ndarray]:
    """Whole utterances padded to the longest of them: (x float32 [n, max len, mels], lengths)."""
    lengths = np.maximum(lengths.astype(np.int64), 1)
    width = int(lengths.max()) if len(lengths) else 1
    return random_windows(frames, starts, lengths, width, np.random.default_rng(0), norm)
