"""Helpers for tests: real wav files and store comparison. Import them from here
(``from tests.helpers import ...``); conftest.py holds fixtures only."""

from __future__ import annotations

import hashlib
import json
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


def write_emobox(root: Path, downloads: Path, dataset: str, speakers, folds: int, *, valid=False, segment=False):
    """A corpus in EmoBox's layout (root/data/<dataset>/...): per speaker an angry (raw label
    'W') and a neutral ('N') wav named like EmoDB's (speaker digits first) under
    downloads/<dataset>/; fold k tests speakers[k-1::max(folds, 3)]; with ``valid``, a valid file per
    fold (the first train speaker); with ``segment``, one extra train line that is the second
    half of a longer recording of a train speaker (start_time/end_time). Returns the jsonl records."""
    folder = Path(root) / "data" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "label_map.json").write_text(json.dumps({"W": "angry", "N": "neutral"}))
    records = []
    for n, spk in enumerate(speakers):
        for emo, freq in (("W", 320.0 + 20 * n), ("N", 140.0 + 10 * n)):
            rel = f"{dataset}/wav/{spk}a0{n % 10}{emo}a.wav"
            write_wav(Path(downloads) / rel, seconds=0.6, freq=freq)
            records.append({"key": Path(rel).stem, "dataset": dataset, "wav": rel, "sample_rate": 16000})
            records[-1] |= {"length": 0.6, "channel": 1, "task": "category", "emo": emo}
    for k in range(1, folds + 1):
        test = set(speakers[k - 1 :: max(folds, 3)])
        train = [r for r in records if r["key"][:2] not in test]
        lines = {"test": [r for r in records if r["key"][:2] in test]}
        if valid:
            first = train[0]["key"][:2]
            lines["valid"] = [r for r in train if r["key"][:2] == first]
            train = [r for r in train if r["key"][:2] != first]
        if segment:  # a longer recording of the first train speaker
            long_rel = f"{dataset}/wav/{train[0]['key'][:2]}long.wav"
            write_wav(Path(downloads) / long_rel, seconds=1.5, freq=300.0)
            train = [*train, {**train[0], "key": "long1", "wav": long_rel, "start_time": 0.75, "end_time": 1.5}]
        lines["train"] = train
        (folder / f"fold_{k}").mkdir(exist_ok=True)
        for part, recs in lines.items():
            text = "".join(json.dumps(r) + "\n" for r in recs)
            (folder / f"fold_{k}" / f"{dataset}_{part}_fold_{k}.jsonl").write_text(text)
    return records
