"""What the shared decode of EmoBox folds saves per utterance: decoding a wav and computing
its log-mels (what every fold's block did before) against loading the features a first
block kept (emonet.extraction.shared). One torch thread, as in an extraction worker.

    .venv/bin/python bench/bench_shared_decode.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from emonet.data.features import FeatureConfig
from emonet.extraction.featurize import Featurizer


def main(rounds: int = 5, reps: int = 40) -> None:
    torch.set_num_threads(1)
    featurize = Featurizer(FeatureConfig())
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in (3.0, 10.0):
            wav = Path(tmp) / f"{seconds:g}.wav"
            t = np.arange(int(seconds * 16000)) / 16000
            sf.write(wav, 0.3 * np.sin(2 * np.pi * 440 * t), 16000, subtype="PCM_16")
            kept = Path(tmp) / "kept.npy"
            np.save(kept, featurize(str(wav)))
            decode, load = [], []
            for _ in range(rounds):
                t0 = time.perf_counter()
                for _ in range(reps):
                    featurize(str(wav))
                decode.append((time.perf_counter() - t0) / reps)
                t0 = time.perf_counter()
                for _ in range(reps):
                    np.load(kept)
                load.append((time.perf_counter() - t0) / reps)
            print(
                f"{seconds:g} s wav: decode + log-mel {1e3 * np.median(decode):.2f} ms, "
                f"load of its kept features {1e3 * np.median(load):.3f} ms (medians of {rounds} x {reps})"
            )


if __name__ == "__main__":
    main()
