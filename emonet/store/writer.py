"""Resumable partition writing shared by both backends.

The partition's frames are cut into blocks fixed in advance (zarr: shards; webdataset:
tar files). Decoded utterances are copied into the current block's buffer; a block is
written whole by exactly one writer, then recorded in ``progress.json`` (atomic rename).
After a crash, writing resumes at the first utterance of the first unrecorded block, and
anything that block may have left half-written is removed first. Per-band sums of each
block are kept in the progress record, so normalisation statistics need no re-read."""

from __future__ import annotations

import abc
import os
import time
from pathlib import Path

import numpy as np

from emonet.store.partition_plan import PartitionContent
from emonet.utils.fs import atomic_write_json, read_json


_TEST_BLOCK_DELAY = float(os.environ.get("_EMONET_TEST_BLOCK_DELAY", "0") or 0)


class StagedPartitionWriter(abc.ABC):
    def __init__(self, staging: Path, content: PartitionContent, layout_key: str):
        self.dir = Path(staging)
        self.content = content
        self.bounds = self.block_bounds()  # frame offsets of block edges: [0, ..., total]
        self.plan_id = content.fingerprint(layout_key, self.bounds.tolist())
        self._progress_file = self.dir / "progress.json"
        self.blocks_done, self.block_sums = self._load_progress()
        self._block = self.blocks_done
        self._buf: np.ndarray | None = None
        self._fill_to = 0

    # -- backend hooks ---------------------------------------------------------------
    @abc.abstractmethod
    def block_bounds(self) -> np.ndarray:
        """Frame offsets of block edges, starting at 0 and ending at total frames."""

    @abc.abstractmethod
    def initialise(self) -> None:
        """Create the (empty) partition in the staging folder, per-utterance arrays included."""

    @abc.abstractmethod
    def discard_blocks_from(self, k: int) -> None:
        """Remove whatever blocks >= k may have left on disk."""

    @abc.abstractmethod
    def write_block(self, k: int, frames: np.ndarray) -> None:
        """Write block k (its whole frame range) in one go."""

    # -- resume ----------------------------------------------------------------------
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
        atomic_write_json(self._progress_file, {"plan": self.plan_id, "blocks_done": self.blocks_done, "sums": self.block_sums})

    def prepare(self) -> int:
        """Gets the staging folder ready and returns the first utterance index to decode."""
        if self.blocks_done < 0:
            if self.dir.exists():
                import shutil

                shutil.rmtree(self.dir)
            self.dir.mkdir(parents=True)
            self.initialise()
            self.blocks_done, self.block_sums = 0, []
            self._save_progress()
        self.discard_blocks_from(self.blocks_done)
        self._block = self.blocks_done
        if self._block >= len(self.bounds) - 1:
            return len(self.content)
        start = int(self.bounds[self._block])
        first = int(np.searchsorted(self.content.offsets, start, side="right") - 1)
        self._new_buffer()
        return max(first, 0)

    @property
    def done(self) -> bool:
        return self.blocks_done >= len(self.bounds) - 1

    def _new_buffer(self) -> None:
        k = self._block
        size = int(self.bounds[k + 1] - self.bounds[k])
        self._buf = np.empty((size, self.content.n_mels), dtype=np.float16)
        self._fill_to = 0

    # -- writing ---------------------------------------------------------------------
    def add(self, index: int, feats: np.ndarray) -> None:
        """Utterance ``index``'s features [frames, n_mels]; indices must come in order."""
        c = self.content
        lo, hi = int(c.offsets[index]), int(c.offsets[index + 1])
        if feats.shape != (hi - lo, c.n_mels):
            raise RuntimeError(f"{c.files[index]}: got features {feats.shape}, planned {(hi - lo, c.n_mels)}")
        pos = lo
        while pos < hi and self._block < len(self.bounds) - 1:
            b_lo, b_hi = int(self.bounds[self._block]), int(self.bounds[self._block + 1])
            if pos < b_lo:  # part before the resumed block: already on disk
                pos = b_lo
                continue
            take = min(hi, b_hi) - pos
            self._buf[pos - b_lo : pos - b_lo + take] = feats[pos - lo : pos - lo + take]
            pos += take
            self._fill_to = pos - b_lo
            if pos == b_hi:
                self._flush()

    def _flush(self) -> None:
        k = self._block
        self.write_block(k, self._buf)
        x = self._buf.astype(np.float64)
        self.block_sums.append([int(x.shape[0]), x.sum(0).tolist(), (x * x).sum(0).tolist()])
        self.blocks_done = k + 1
        self._save_progress()
        if _TEST_BLOCK_DELAY:  # fault-injection hook for the kill -9 tests: widen the window
            time.sleep(_TEST_BLOCK_DELAY)
        self._block = k + 1
        if not self.done:
            self._new_buffer()

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
