"""PartitionContent: what a partition will hold, fixed before anything is written."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np


@dataclass
class PartitionContent:
    """Per-utterance facts of one partition, in csv order. ``frames`` are known in advance
    from the audio headers, so every block's frame range is fixed before decoding."""

    task: str
    partition: str
    files: list[str]
    label_ids: np.ndarray  # int16, -1 for unlabelled
    frames: np.ndarray  # int64
    seconds: np.ndarray  # float64, original durations
    n_mels: int
    labelled: bool = True
    paths: list[str] = field(default_factory=list)  # audio paths, for writing (not part of the content)
    # per utterance, (start, end) seconds of a segment or None for the whole file (for
    # writing; ``files`` holds the segment in its keys). Empty: all whole files.
    segments: list = field(default_factory=list)

    offsets: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.label_ids = np.asarray(self.label_ids, dtype=np.int16)
        self.frames = np.asarray(self.frames, dtype=np.int64)
        self.seconds = np.asarray(self.seconds, dtype=np.float64)
        self.offsets = np.concatenate([[0], np.cumsum(self.frames)]).astype(np.int64)

    def segment(self, i: int):
        """Utterance ``i``'s (start, end) seconds, or None for a whole file."""
        return self.segments[i] if self.segments else None

    def __len__(self) -> int:
        return len(self.files)

    @property
    def total_frames(self) -> int:
        return int(self.offsets[-1])

    def fingerprint(self, *extra) -> str:
        h = hashlib.sha256()
        h.update(json.dumps([self.task, self.partition, self.files, self.n_mels, self.labelled, *extra]).encode())
        if any(s is not None for s in self.segments):  # exact bounds (keys hold them to the microsecond)
            h.update(json.dumps([list(s) if s is not None else None for s in self.segments]).encode())
        for arr in (self.label_ids, self.frames, self.seconds):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:24]
