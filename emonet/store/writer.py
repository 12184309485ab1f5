"""Resumable partition writing shared by both backends.

The partition's frames are cut into blocks fixed in advance (zarr: shards; webdataset:
tar files). Each block is written whole by exactly one writer (a worker process), and
recorded in ``progress.json`` (atomic rename) in block order once it and every block
before it are on disk. After a crash, writing resumes at the first unrecorded block, and
whatever later blocks may have left half-written is removed first. Per-band sums of each
block are kept in the progress record, so normalisation statistics need no re-read."""

from __future__ import annotations

import abc
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emonet.store.partition_plan import PartitionContent
from emonet.utils.fs import atomic_write_json, read_json


class BlockLayout(abc.ABC):
    """How one backend cuts a partition into blocks and writes them. ``write_block`` runs
    in worker processes, so a layout holds only small, picklable settings."""

    name: str

    @abc.abstractmethod
    def block_bounds(self, content: PartitionContent) -> np.ndarray:
        """Frame offsets of block edges, starting at 0 and ending at the total frames."""

    @abc.abstractmethod
    def initialise(self, stage: Path, content: PartitionContent, bounds: np.ndarray) -> None:
        """Create the (empty) partition in the staging folder, per-utterance arrays included."""

    @abc.abstractmethod
    def discard_blocks_from(self, stage: Path, k: int) -> None:
        """Remove whatever blocks >= k may have left on disk."""

    @abc.abstractmethod
    def write_block(self, stage: Path, k: int, lo: int, frames: np.ndarray, items: list[BlockItem]) -> None:
        """Write block k (frames ``lo`` to ``lo + len(frames)``) in one go."""

    def key(self) -> str:
        return self.name


@dataclass(frozen=True)
class BlockItem:
    """An utterance overlapping a block."""

    index: int
    path: str
    lo: int  # the utterance's first frame (partition offset)
    hi: int  # one past its last frame
    meta: dict  # what a sample needs besides its frames (webdataset)


@dataclass(frozen=True)
class BlockJob:
    """One block to compute and write: everything a worker needs, picklable."""

    stage: Path
    layout: BlockLayout
    k: int
    lo: int
    hi: int
    items: tuple[BlockItem, ...]
    n_mels: int


def block_sums(frames: np.ndarray) -> list:
    x = frames.astype(np.float32)  # exact for float16 values; sums accumulate in float64
    return [
        int(x.shape[0]),
        x.sum(0, dtype=np.float64).tolist(),
        np.square(x).sum(0, dtype=np.float64).tolist(),
    ]


class StagedPartition:
    """The main process's view of a partition being written in its staging folder."""

    def __init__(self, stage: Path, content: PartitionContent, layout: BlockLayout, classes: list[str]):
        self.dir = Path(stage)
        self.content = content
        self.layout = layout
        self.classes = list(classes)
        self.bounds = layout.block_bounds(content)
        self.plan_id = content.fingerprint(layout.key(), self.bounds.tolist())
        self._progress_file = self.dir / "progress.json"
        self.blocks_done, self.block_sums = self._load_progress()

    @property
    def n_blocks(self) -> int:
        return len(self.bounds) - 1

    def _load_progress(self) -> tuple[int, list]:
        if self._progress_file.is_file():
            try:
                p = read_json(self._progress_file)
                if p.get("plan") == self.plan_id:
                    return int(p["blocks_done"]), list(p["sums"])
            except (ValueError, KeyError):
                pass
        return -1, []  # -1: not initialised

    def _save_progress(self) -> None:
        atomic_write_json(
            self._progress_file,
            {"plan": self.plan_id, "blocks_done": self.blocks_done, "sums": self.block_sums},
        )

    def prepare(self) -> range:
        """Gets the staging folder ready and returns the blocks still to write, in order
        (make each one's job with ``job(k)`` when it is due)."""
        if self.blocks_done < 0:
            if self.dir.exists():
                shutil.rmtree(self.dir)
            self.dir.mkdir(parents=True)
            self.layout.initialise(self.dir, self.content, self.bounds)
            self.blocks_done, self.block_sums = 0, []
            self._save_progress()
        self.layout.discard_blocks_from(self.dir, self.blocks_done)
        return range(self.blocks_done, self.n_blocks)

    def job(self, k: int) -> BlockJob:
        c = self.content
        lo, hi = int(self.bounds[k]), int(self.bounds[k + 1])
        first = int(np.searchsorted(c.offsets, lo, side="right") - 1)
        last = int(np.searchsorted(c.offsets, hi, side="left"))  # utterances [first, last) overlap
        items = []
        for i in range(max(first, 0), last):
            label_id = int(c.label_ids[i])
            meta = {
                "file": c.files[i],
                "label": self.classes[label_id] if label_id >= 0 else None,
                "label_id": label_id,
                "frames": int(c.frames[i]),
                "n_mels": c.n_mels,
                "seconds": float(c.seconds[i]),
            }
            items.append(BlockItem(i, str(c.paths[i]), int(c.offsets[i]), int(c.offsets[i + 1]), meta))
        return BlockJob(self.dir, self.layout, k, lo, hi, tuple(items), c.n_mels)

    def finished_in_block(self, k: int) -> tuple[int, float]:
        """(files, seconds) whose last frame lies in block k: each file counts once."""
        c = self.content
        lo, hi = int(self.bounds[k]), int(self.bounds[k + 1])
        ends = c.offsets[1:] - 1
        sel = (ends >= lo) & (ends < hi)
        return int(sel.sum()), float(c.seconds[sel].sum())

    def record(self, k: int, sums: list) -> None:
        """Block k is on disk (blocks must be recorded in order)."""
        if k != self.blocks_done:
            raise RuntimeError(f"internal error: block {k} recorded after {self.blocks_done}")
        self.block_sums.append(sums)
        self.blocks_done = k + 1
        self._save_progress()
        if _TEST_BLOCK_DELAY:  # fault-injection hook for the kill -9 tests: widen the window
            import time

            time.sleep(_TEST_BLOCK_DELAY)

    @property
    def done(self) -> bool:
        return self.blocks_done >= self.n_blocks

    def mel_stats(self) -> tuple[list[float], list[float]]:
        """Per-band mean and std of all frames (float64 accumulation)."""
        n = sum(s[0] for s in self.block_sums)
        if n == 0:
            return [0.0] * self.content.n_mels, [1.0] * self.content.n_mels
        s1 = np.sum([s[1] for s in self.block_sums], axis=0)
        s2 = np.sum([s[2] for s in self.block_sums], axis=0)
        mean = s1 / n
        std = np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))
        return mean.tolist(), np.maximum(std, 1e-5).tolist()


_TEST_BLOCK_DELAY = float(os.environ.get("_EMONET_TEST_BLOCK_DELAY", "0") or 0)
