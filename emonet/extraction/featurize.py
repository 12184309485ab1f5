"""Decoding and log-mel computation, in parallel worker threads.

torch and libsndfile release the GIL for their heavy work, so threads decode and compute
in parallel without the start-up cost, memory and fork hazards of worker processes (zarr
runs an event-loop thread that forked workers can deadlock on). Torch's own intra-op
threads are pinned to one per worker to avoid oversubscription."""

from __future__ import annotations

import contextlib
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from emonet.data.audio import load_mono
from emonet.data.features import FeatureConfig, LogMel

_END = object()


def ordered_map(fn: Callable, items: Iterable, workers: int, window: int | None = None) -> Iterator:
    """Like ``map(fn, items)`` with ``workers`` threads, results in order, and at most
    ``window`` items in flight, so memory does not grow with the input's length."""
    if workers <= 1:
        yield from map(fn, items)
        return
    window = window or workers * 4
    it = iter(items)
    ex = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emonet-decode")
    try:
        pending = deque(ex.submit(fn, x) for x in itertools.islice(it, window))
        while pending:
            res = pending.popleft().result()
            nxt = next(it, _END)
            if nxt is not _END:
                pending.append(ex.submit(fn, nxt))
            yield res
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def pinned_torch_threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Featurizer:
    """path -> (features [frames, n_mels] in the storage dtype, converted?).

    On CPU the whole computation runs in the worker threads. With a CUDA device the
    workers decode and resample, and the mel runs on the GPU in the calling thread."""

    def __init__(self, config: FeatureConfig, device: str = "cpu"):
        self.config = config
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            from emonet.errors import EmoNetError

            raise EmoNetError("--device cuda: no CUDA GPU is visible to torch (torch.cuda.is_available() is False); use --device cpu")
        self.logmel = LogMel(config, self.device)
        self.on_gpu = self.device.type != "cpu"

    def decode(self, path: Path) -> tuple[torch.Tensor, bool]:
        wav, converted = load_mono(path, self.config.sample_rate)
        if self.on_gpu:
            wav = wav.pin_memory()
        return wav, converted

    def work(self, path: Path):
        """The part that runs in a worker thread."""
        wav, converted = self.decode(path)
        if self.on_gpu:
            return wav, converted
        return self.logmel(wav), converted

    def finish(self, item) -> tuple[np.ndarray, bool]:
        """The part that runs in the calling thread (the GPU mel, if any)."""
        x, converted = item
        if self.on_gpu:
            x = self.logmel(x)
        return x, converted

    def map(self, paths: Iterable[Path], workers: int) -> Iterator[tuple[np.ndarray, bool]]:
        for item in ordered_map(self.work, paths, workers):
            yield self.finish(item)
