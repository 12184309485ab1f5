"""A built-in demo corpus: several small synthetic "emotion" corpora of real 16 kHz wav
files in the original EmoNet's layout. Each class has its own voice-like signature (pitch level and
contour, syllable rate, loudness, spectral tilt, breathiness) with per-speaker variation,
so the classes are learnable from the log-mel spectrogram but not trivially separable.

Layout written under OUT::

    OUT/data/<task>/<speaker>_<n>.wav       the data path (--data-path OUT/data)
    OUT/tasks/<task>/{train,devel,test}.csv  single-task csvs (header file,label)
    OUT/multi-task-setup/<task>/{train,val,test}.csv
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from emonet.errors import ConfigError

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Voice:
    f0: float  # mean pitch in Hz
    f0_slope: float  # pitch change over the utterance, in octaves
    rate: float  # syllables per second
    level: float  # peak amplitude
    tilt: float  # harmonic roll-off exponent (bigger = duller)
    breath: float  # noise-to-voice ratio


# task -> class -> voice signature
DEMO_TASKS: dict[str, dict[str, Voice]] = {
    "acted": {
        "angry": Voice(f0=220, f0_slope=-0.2, rate=5.5, level=0.8, tilt=0.8, breath=0.05),
        "happy": Voice(f0=240, f0_slope=0.4, rate=4.5, level=0.6, tilt=1.1, breath=0.05),
        "neutral": Voice(f0=150, f0_slope=0.0, rate=3.5, level=0.4, tilt=1.4, breath=0.05),
        "sad": Voice(f0=120, f0_slope=-0.3, rate=2.5, level=0.25, tilt=1.9, breath=0.15),
    },
    "arousal": {
        "high": Voice(f0=230, f0_slope=0.1, rate=5.0, level=0.7, tilt=0.9, breath=0.05),
        "low": Voice(f0=130, f0_slope=-0.1, rate=2.8, level=0.3, tilt=1.7, breath=0.1),
    },
    "valence": {
        "negative": Voice(f0=170, f0_slope=-0.4, rate=3.8, level=0.5, tilt=1.2, breath=0.12),
        "neutral": Voice(f0=160, f0_slope=0.0, rate=3.8, level=0.5, tilt=1.4, breath=0.05),
        "positive": Voice(f0=190, f0_slope=0.45, rate=3.8, level=0.5, tilt=1.0, breath=0.03),
    },
}
SPLITS = (("train", 0.6), ("devel", 0.2), ("test", 0.2))
VOWEL_FORMANTS = np.array(
    [[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]], float
)


def synthesize(voice: Voice, seconds: float, rng: np.random.Generator, speaker_shift: float) -> np.ndarray:
    """One utterance: harmonic source with formants, syllable envelope and breath noise."""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    f0_mean = voice.f0 * speaker_shift * np.exp(rng.normal(0, 0.06))
    contour = 2.0 ** (voice.f0_slope * (t / seconds - 0.5)) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(3, 6) * t))
    f0 = f0_mean * contour
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE

    # syllables: raised-cosine envelopes, each with its own vowel
    rate = voice.rate * np.exp(rng.normal(0, 0.08))
    n_syl = max(1, int(round(seconds * rate)))
    syl_pos = np.minimum((t * n_syl / seconds).astype(int), n_syl - 1)
    within = (t * n_syl / seconds) % 1.0
    env = np.sin(np.pi * within) ** 2
    vowels = VOWEL_FORMANTS[rng.integers(0, len(VOWEL_FORMANTS), n_syl)] * speaker_shift**0.3
    formants = vowels[syl_pos]  # [n, 3]

    voiced = np.zeros(n)
    for k in range(1, int(4000 / f0_mean) + 1):
        fk = k * f0
        gain = k**-voice.tilt * sum(np.exp(-0.5 * ((fk - formants[:, j]) / (80 + 40 * j)) ** 2) for j in range(3))
        voiced += (gain + 0.02 * k**-voice.tilt) * np.sin(k * phase)
    voiced /= np.max(np.abs(voiced)) + 1e-9
    noise = rng.normal(0, 1, n)
    noise = np.convolve(noise, np.ones(4) / 4, mode="same")
    sig = env * (voiced + voice.breath * noise) + 0.003 * rng.normal(0, 1, n)
    sig *= voice.level * np.exp(rng.normal(0, 0.15)) / (np.max(np.abs(sig)) + 1e-9)
    return np.clip(sig, -1, 1).astype(np.float32)


def generate_demo_corpus(
    out: Path,
    *,
    files_per_task: int = 120,
    tasks: list[str] | None = None,
    seed: int = 0,
    min_seconds: float = 1.0,
    max_seconds: float = 3.0,
) -> dict:
    """Writes the demo corpus under ``out`` and returns a description of what it wrote.
    The same arguments always give the same files."""
    out = Path(out)
    tasks = list(tasks or DEMO_TASKS)
    unknown = [t for t in tasks if t not in DEMO_TASKS]
    if unknown:
        raise ConfigError(f"unknown demo task(s) {unknown}; choose from {sorted(DEMO_TASKS)}")
    if files_per_task < 3 * max(len(DEMO_TASKS[t]) for t in tasks):
        raise ConfigError("files_per_task is too small: every class needs a file in train, devel and test")
    summary: dict = {"data_path": str(out / "data"), "tasks": {}}
    for ti, task in enumerate(tasks):
        classes = sorted(DEMO_TASKS[task])
        rng = np.random.default_rng([seed, ti])
        n_speakers = 10
        speaker_shift = np.exp(rng.normal(0, 0.12, n_speakers))
        # speakers are split across partitions: 6 train, 2 devel, 2 test
        speaker_split = {s: ("train" if s < 6 else "devel" if s < 8 else "test") for s in range(n_speakers)}
        rows: dict[str, list[tuple[str, str]]] = {p: [] for p, _ in SPLITS}
        wav_dir = out / "data" / task
        wav_dir.mkdir(parents=True, exist_ok=True)
        for i in range(files_per_task):
            label = classes[i % len(classes)]
            part = (
                SPLITS[0][0]
                if (i // len(classes)) % 5 < 3
                else SPLITS[1][0]
                if (i // len(classes)) % 5 == 3
                else SPLITS[2][0]
            )
            speakers = [s for s, p in speaker_split.items() if p == part]
            urng = np.random.default_rng([seed, ti, i])
            spk = speakers[int(urng.integers(0, len(speakers)))]
            seconds = float(urng.uniform(min_seconds, max_seconds))
            audio = synthesize(DEMO_TASKS[task][label], seconds, urng, float(speaker_shift[spk]))
            name = f"spk{spk:02d}_{i:05d}.wav"
            sf.write(str(wav_dir / name), audio, SAMPLE_RATE, subtype="PCM_16")
            rows[part].append((f"{task}/{name}", label))
        single = out / "tasks" / task
        multi = out / "multi-task-setup" / task
        for folder, names in (
            (single, {"train": "train.csv", "devel": "devel.csv", "test": "test.csv"}),
            (multi, {"train": "train.csv", "devel": "val.csv", "test": "test.csv"}),
        ):
            folder.mkdir(parents=True, exist_ok=True)
            for part, fname in names.items():
                with open(folder / fname, "w", newline="") as fh:
                    w = csv.writer(fh)
                    w.writerow(["file", "label"])
                    w.writerows(rows[part])
        summary["tasks"][task] = {"classes": classes, **{p: len(r) for p, r in rows.items()}}
    return summary
