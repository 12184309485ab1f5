"""Audio file -> log-mel features, on CPU or on a CUDA device."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from emonet.data.audio import load_mono
from emonet.data.features import FeatureConfig, LogMel
from emonet.data.segments import Segment
from emonet.utils.devices import resolve_device


class Featurizer:
    """Decodes files (mono, resampled) and computes their log-mels in the storage dtype."""

    def __init__(self, config: FeatureConfig, device: str = "cpu"):
        self.config = config
        self.device = resolve_device(device)
        self.logmel = LogMel(config, self.device)

    def __call__(self, path: str, segment: Segment | None = None) -> np.ndarray:
        wav, _converted = load_mono(path, self.config.sample_rate, segment)
        return self.logmel(wav)

    def many(
        self, paths: Iterable[str], prefetch_threads: int = 0, segments: Iterable[Segment | None] | None = None
    ) -> Iterator[np.ndarray]:
        """Features of each path (or of its segment: ``segments`` in the same order, None
        for a whole file) in order. With ``prefetch_threads``, decoding runs ahead in
        threads while the mel runs here (the GPU path)."""
        work = zip(paths, itertools.repeat(None) if segments is None else segments, strict=False)  # repeat: endless
        if prefetch_threads <= 0:
            for p, seg in work:
                yield self(p, seg)
            return
        rate = self.config.sample_rate
        with ThreadPoolExecutor(prefetch_threads, thread_name_prefix="emonet-decode") as ex:
            pending = deque(ex.submit(load_mono, p, rate, s) for p, s in itertools.islice(work, prefetch_threads * 4))
            while pending:
                wav, _ = pending.popleft().result()
                nxt = next(work, None)
                if nxt is not None:
                    pending.append(ex.submit(load_mono, nxt[0], rate, nxt[1]))
                yield self.logmel(wav.pin_memory() if self.device.type == "cuda" else wav)
