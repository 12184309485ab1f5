"""Helpers for tests: real wav files and store comparison. Import them from here
(``from tests.helpers import ...``); conftest.py holds fixtures only."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import soundfile as sf

DEMO_TASKS = ["acted", "arousal", "valence"]  # the tasks of the demo corpus the demo_store fixture extracts

# Two float64 computations of one function (the model tests run in float64): kernels round at
# ~1e-14 there, and the smallest real bug the tests guard against (one frame of a mask) moves
# outputs by >= 1e-3, so 1e-10 separates the two by orders of magnitude on any CPU.
F64 = dict(atol=1e-10, rtol=1e-10)


def write_wav(
    path: Path,
    seconds: float = 1.0,
    rate: int = 16000,
    channels: int = 1,
    freq: float = 440.0,
    subtype="PCM_16",
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * freq * t)
    data = np.stack([x * (0.5 + 0.5 * c) for c in range(channels)], axis=1) if channels > 1 else x
    sf.write(str(path), data, rate, subtype=subtype)
    return path


def write_csv(path: Path, rows, header="file,label") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ([header] if header else []) + [",".join(r) if isinstance(r, (tuple, list)) else r for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def tree_digest(root: Path, exclude=(".staging",)) -> dict[str, str]:
    """relative path -> sha256 of every file below root."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in exclude]
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def make_task(
    root: Path,
    name: str = "t",
    n_per_class: int = 4,
    classes=("a", "b"),
    seconds=0.6,
    partitions=("train", "devel", "test"),
):
    """Writes wavs under root/data/name and csvs under root/csv/name; returns (data, csvs)."""
    data = root / "data"
    csvs = {}
    for part in partitions:
        rows = []
        for ci, c in enumerate(classes):
            for i in range(n_per_class):
                rel = f"{name}/{part}_{c}_{i}.wav"
                write_wav(data / rel, seconds=seconds + 0.05 * i, freq=200 + 300 * ci)
                rows.append((rel, c))
        csvs[part] = write_csv(root / "csv" / name / f"{part}.csv", rows)
    return data, csvs


# Runs the CLI with a pause after each recorded block: fault injection that lives in the
# tests, not in production code. It widens the window in which a kill or a signal lands.
SLOW_CLI = """
import sys, time
from emonet.store import staging
_record = staging.StagedPartition.record
def record(self, k, block):
    _record(self, k, block)
    time.sleep(0.03)
staging.StagedPartition.record = record
from emonet.cli.app import main
sys.exit(main(sys.argv[1:]))
"""
