"""Vectorised batch assembly: random windows or whole utterances gathered from frames in
memory (one index_select), converted to float32, normalised on the fly and zero-padded."""

from __future__ import annotations

import hashlib

import numpy as np
import torch


class Normalizer:
    """Per-mel-band standardisation with the store's train statistics (never baked into the
    store): ``(x - mean) / std``; padding stays exactly zero."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean = torch.as_tensor(np.asarray(mean, np.float32))
        self.inv_std = torch.as_tensor((1.0 / np.maximum(np.asarray(std, np.float32), 1e-5)).astype(np.float32))
        # mean +0.0 and 1 / std 1 everywhere (the original's raw log-mels): (x - 0) * 1 is x for
        # every float, so the arithmetic is skipped (not for -0.0: -0.0 - -0.0 is +0.0)
        m = self.mean.numpy()
        self.identity = bool((m == 0).all() and not np.signbit(m).any() and (self.inv_std == 1).all())

    @property
    def n_mels(self) -> int:
        return len(self.mean)


def normalize(frames: np.ndarray | torch.Tensor, norm: Normalizer) -> torch.Tensor:
    """float32 ``(frames - mean) / std`` as a new tensor [n, mels], element by element
    ``(float32(x) - mean) * inv_std`` (float16 frames are cast inside the subtraction: one
    pass, the same values as casting first)."""
    t = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if norm.identity:
        return t.float() if t.dtype != torch.float32 else t.clone()
    return torch.sub(t, norm.mean).mul_(norm.inv_std)


class Normalized:
    """``normalize`` as a preparation step for the frame cache; ``cache_key`` names the
    statistics, so two normalisations of one partition never share cached frames."""

    def __init__(self, norm: Normalizer):
        self.norm = norm
        digest = hashlib.sha256(norm.mean.numpy().tobytes() + norm.inv_std.numpy().tobytes()).hexdigest()[:16]
        self.cache_key = f"normalized-float32:{digest}"

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        return normalize(frames, self.norm)


def with_pad_row(pieces: list[torch.Tensor]) -> torch.Tensor:
    """The normalised pieces (float32) concatenated, with one zero row appended (the padding
    row of :func:`gather_windows`)."""
    zero = torch.zeros((1, pieces[0].shape[1] if pieces else 0), dtype=torch.float32)
    return torch.cat([*pieces, zero]) if pieces else zero


def gather_windows(
    frames: torch.Tensor, starts: np.ndarray, valid: np.ndarray, width: int, norm: Normalizer | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``starts[i] : starts[i] + valid[i]`` of ``frames``, zero-padded to ``width``, in one
    ``index_select``; with ``norm`` the gathered rows only are normalised (:func:`normalize`).

    Args:
        frames: [total + 1, mels] from :func:`with_pad_row` (last row zero): float32, or
            with ``norm`` the raw float16 frames.
        starts: int64 [n], first frame of each window in ``frames``.
        valid: int64 [n], frames of each window (1..width).
        width: frames per row of the result.
        norm: None: ``frames`` are the batch's values; else the normalisation to apply.

    Returns:
        (x float32 [n, width, mels], lengths int64 [n] = valid). Every row that is
        ``frames``' last (padding) is exactly zero.
    """
    n = len(starts)
    steps = np.arange(width, dtype=np.int64)[None, :]
    pad = len(frames) - 1
    idx = np.where(steps < valid[:, None], starts[:, None] + steps, pad).reshape(-1)
    x = frames.index_select(0, torch.from_numpy(idx))
    if norm is not None:
        x = normalize(x, norm)
        if not norm.identity:  # the padding row normalised is -mean / std: back to zero
            rows = np.flatnonzero(idx == pad)
            if len(rows):
                x.index_fill_(0, torch.from_numpy(rows), 0.0)
    return x.view(n, width, -1), torch.from_numpy(valid.astype(np.int64))


def scoring_windows(lengths: np.ndarray, window: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The frames a clip is scored on (devel, test, ``emonet evaluate``): (offset of the first
    frame in the clip int64 [n], valid frames int64 [n]).

    ``window`` None: the whole clip. Otherwise the original EmoNet's one window per clip: it
    starts at the clip's midpoint (``length // 2``) when half the clip is longer than the
    window, else at 0, and ends after ``window`` frames or at the clip's end.
    """
    lengths = np.maximum(np.asarray(lengths, np.int64), 1)
    if window is None:
        return np.zeros(len(lengths), np.int64), lengths
    offsets = np.where(lengths / 2 > window, lengths // 2, 0).astype(np.int64)
    return offsets, np.minimum(lengths - offsets, window).astype(np.int64)


def crop_offsets(lengths: np.ndarray, window: int, rng: np.random.Generator) -> np.ndarray:
    """A random start of a ``window``-frame crop inside each utterance (0 when shorter)."""
    slack = np.maximum(lengths - window, 0)
    return np.floor(rng.random(len(lengths)) * (slack + 1)).astype(np.int64)
