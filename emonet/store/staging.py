"""Resumable partition writing shared by both backends.

The partition's frames are cut into blocks fixed in advance (zarr: shards; webdataset:
tar files). Each block is written whole by exactly one writer (a worker process), and
recorded in ``progress.json`` (atomic rename) in block order once it and every block
before it are on disk. After a crash, writing resumes at the first unrecorded block, and
whatever later blocks may have left half-written is removed first. Each block's record
holds its per-band sums (so normalisation statistics need no re-read) and the checksum
of its file (kept in the partition's metadata and verified on every read)."""

from __future__ import annotations

import abc
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from emonet.store.content import PartitionContent
from emonet.utils.checksum import crc32
from emonet.utils.fs import atomic_write_json, read_json

PROGRESS = "progress.json"


def file_crc32(path: Path) -> int:
    """CRC-32 of a file's bytes (:func:`emonet.utils.checksum.crc32`)."""
    return crc32(Path(path).read_bytes())


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
    def write_block(self, stage: Path, k: int, lo: int, frames: np.ndarray, items: list[BlockItem]) -> int:
        """Write block k (frames ``lo`` to ``lo + len(frames)``) in one go; returns the
        CRC-32 of the file written."""

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
    segment: tuple[float, float] | None = None  # (start, end) seconds of the file; None: all of it


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


@dataclass(frozen=True)
class BlockRecord:
    """A written block: its frame count, per-band sums and sums of squares (float64) and
    the CRC-32 of its file."""

    frames: int
    sums: list[float]
    squares: list[float]
    crc32: int

    @classmethod
    def of(cls, frames: np.ndarray, crc32: int) -> BlockRecord:
        x = frames.astype(np.float32)  # exact for float16 values; sums accumulate in float64
        return cls(
            int(x.shape[0]), x.sum(0, dtype=np.float64).tolist(), np.square(x).sum(0, dtype=np.float64).tolist(), crc32
        )


class StagedPartition:
    """The main process's view of a partition being written in its staging folder."""

    def __init__(self, stage: Path, content: PartitionContent, layout: BlockLayout, classes: list[str]):
        self.dir = Path(stage)
        self.content = content
        self.layout = layout
        self.classes = list(classes)
        self.bounds = layout.block_bounds(content)
        self.plan_id = content.fingerprint(layout.key(), self.bounds.tolist())
        self._progress_file = self.dir / PROGRESS
        self.blocks_done, self.records = self._load_progress()

    @property
    def n_blocks(self) -> int:
        return len(self.bounds) - 1

    def _load_progress(self) -> tuple[int, list[BlockRecord]]:
        if self._progress_file.is_file():
            try:
                p = read_json(self._progress_file)
                if p.get("plan") == self.plan_id:
                    return int(p["blocks_done"]), [BlockRecord(**r) for r in p["blocks"]]
            except (ValueError, KeyError, TypeError):
                pass
        return -1, []  # -1: not initialised

    def _save_progress(self) -> None:
        atomic_write_json(
            self._progress_file,
            {"plan": self.plan_id, "blocks_done": self.blocks_done, "blocks": [asdict(r) for r in self.records]},
        )

    def prepare(self) -> range:
        """Gets the staging folder ready and returns the blocks still to write, in order
        (make each one's job with ``job(k)`` when it is due)."""
        if self.blocks_done < 0:
            if self.dir.exists():
                shutil.rmtree(self.dir)
            self.dir.mkdir(parents=True)
            self.layout.initialise(self.dir, self.content, self.bounds)
            self.blocks_done, self.records = 0, []
            self._save_progress()
        self.layout.discard_blocks_from(self.dir, self.blocks_done)
        return range(self.blocks_done, self.n_blocks)

    def job(self, k: int) -> BlockJob:
        """The job that writes block k: the utterances overlapping it and their metadata."""
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
            item = BlockItem(i, str(c.paths[i]), int(c.offsets[i]), int(c.offsets[i + 1]), meta, c.segment(i))
            items.append(item)
        return BlockJob(self.dir, self.layout, k, lo, hi, tuple(items), c.n_mels)

    def finished_in_block(self, k: int) -> tuple[int, float]:
        """(files, seconds) whose last frame lies in block k: each file counts once."""
        c = self.content
        lo, hi = int(self.bounds[k]), int(self.bounds[k + 1])
        ends = c.offsets[1:] - 1
        sel = (ends >= lo) & (ends < hi)
        return int(sel.sum()), float(c.seconds[sel].sum())

    def record(self, k: int, block: BlockRecord) -> None:
        """Block k is on disk (blocks must be recorded in order)."""
        if k != self.blocks_done:
            raise RuntimeError(f"internal error: block {k} recorded after {self.blocks_done}")
        self.records.append(block)
        self.blocks_done = k + 1
        self._save_progress()

    @property
    def done(self) -> bool:
        return self.blocks_done >= self.n_blocks

    @property
    def checksums(self) -> list[int]:
        return [r.crc32 for r in self.records]

    def mel_stats(self) -> tuple[list[float], list[float]]:
        """Per-band mean and std of all frames (float64 accumulation)."""
        n = sum(r.frames for r in self.records)
        if n == 0:
            return [0.0] * self.content.n_mels, [1.0] * self.content.n_mels
        s1 = np.sum([r.sums for r in self.records], axis=0)
        s2 = np.sum([r.squares for r in self.records], axis=0)
        mean = s1 / n
        std = np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))
        return mean.tolist(), np.maximum(std, 1e-5).tolist()
