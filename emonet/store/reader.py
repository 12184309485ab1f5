"""Reading a feature store through one API, whatever its backend."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np

from emonet.data.partitions import PARTITIONS
from emonet.errors import StoreError
from emonet.store import layout
from emonet.utils.fs import tree_size


class Partition(Sequence):
    """One partition of one task: a sequence of ``(file, label, logmel)`` items, where
    ``file`` is the csv's file key, ``label`` the label string (None if unlabelled) and
    ``logmel`` a float32 array [frames, n_mels]. Iteration reads whole blocks (shards)
    and slices them in memory, which is far faster than indexing item by item."""

    def __init__(self, path: Path, backend: str, task: str, name: str, classes: list[str], meta: dict):
        self.path, self.task, self.name = Path(path), task, name
        self.classes = list(classes)
        self.meta = meta
        if backend == "zarr":
            from emonet.store.zarr_backend import ZarrPartitionReader as Reader
        else:
            from emonet.store.wds_backend import WdsPartitionReader as Reader
        self._r = Reader(self.path)
        self.files: list[str] = self._r.files
        self.label_ids: np.ndarray = self._r.labels
        self.offsets: np.ndarray = self._r.offsets
        self.lengths: np.ndarray = np.diff(self.offsets)
        self.seconds: np.ndarray = self._r.seconds
        self._window: tuple[int, int, np.ndarray] | None = None

    @property
    def labels(self) -> list[str | None]:
        return [self.classes[i] if i >= 0 else None for i in self.label_ids]

    @property
    def labelled(self) -> bool:
        return bool(self.meta.get("labelled", True))

    def __len__(self) -> int:
        return len(self.files)

    def _label(self, i: int) -> str | None:
        k = int(self.label_ids[i])
        return self.classes[k] if k >= 0 else None

    def logmel(self, i: int, dtype=np.float32) -> np.ndarray:
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        w = self._window
        if w is not None and w[0] <= lo and hi <= w[1]:
            return w[2][lo - w[0] : hi - w[0]].astype(dtype)
        return self._r.read_frames(lo, hi).astype(dtype)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for partition {self.task}/{self.name} of {n} items")
        i %= n
        return self.files[i], self._label(i), self.logmel(i)

    def iter_blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first frame offset, float16 frames) for each storage block, in order."""
        b = self._r.block_bounds
        for k in range(len(b) - 1):
            yield int(b[k]), self._r.read_frames(int(b[k]), int(b[k + 1]))

    def __iter__(self) -> Iterator[tuple[str, str | None, np.ndarray]]:
        b = self._r.block_bounds
        k = 0
        win_lo, win = 0, np.zeros((0, 0), np.float16)
        for i in range(len(self)):
            lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
            while hi > win_lo + len(win):  # extend the window with the next blocks
                keep = win[lo - win_lo :] if lo < win_lo + len(win) else None
                nxt = self._r.read_frames(int(b[k]), int(b[k + 1]))
                if keep is not None and len(keep):
                    win_lo, win = lo, np.concatenate([keep, nxt])
                else:
                    win_lo, win = int(b[k]), nxt
                k += 1
            self._window = (win_lo, win_lo + len(win), win)
            yield self.files[i], self._label(i), win[lo - win_lo : hi - win_lo].astype(np.float32)
        self._window = None

    def nbytes_on_disk(self) -> int:
        return tree_size(self.path)

    def summary(self) -> dict:
        m = self.meta
        frames = int(self.offsets[-1]) if len(self.offsets) else 0
        disk = self.nbytes_on_disk()
        n_mels = int(m.get("n_mels", 0))
        return {
            "files": len(self),
            "frames": frames,
            "seconds": round(float(self.seconds.sum()), 3),
            "labels": dict(m.get("label_counts", {})),
            "skipped": list(m.get("skipped", [])),
            "converted": int(m.get("converted", 0)),
            "bytes_on_disk": disk,
            "compression_ratio": round(frames * n_mels * 4 / disk, 3) if disk and frames else None,
        }


class FeatureStore:
    """A feature store on disk. Open with :func:`open_store`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise StoreError(
                f"{self.path}: no feature store here (folder not found); create one with 'emonet extract --store {self.path} ...'"
            )
        backend = layout.detect_backend(self.path)
        if backend is None:
            raise StoreError(f"{self.path}: not an emonet feature store (no store metadata); check the path")
        self.backend = backend
        self._meta_io = layout.MetaIO(backend)
        self.meta = self._meta_io.read(self.path, "store")
        if self.meta.get("version", 0) > layout.FORMAT_VERSION:
            raise StoreError(
                f"{self.path}: store format version {self.meta['version']} is newer than this emonet reads ({layout.FORMAT_VERSION}); upgrade emonet"
            )
        self._tasks = layout.task_dirs(self.path, self._meta_io)

    @property
    def feature_config(self) -> Mapping:
        return MappingProxyType(dict(self.meta["feature_config"]))

    @property
    def feature_hash(self) -> str:
        return self.meta["feature_hash"]

    @property
    def tasks(self) -> list[str]:
        return list(self._tasks)

    def _task(self, task: str) -> dict:
        if task not in self._tasks:
            raise KeyError(f"task {task!r} is not in store {self.path}; it has: {', '.join(self._tasks) or 'no tasks'}")
        return self._tasks[task]

    def classes(self, task: str) -> list[str]:
        return list(self._task(task)["classes"])

    def label_map(self, task: str) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes(task))}

    def partitions(self, task: str) -> list[str]:
        self._task(task)
        return [p for p in PARTITIONS if self._partition_meta(task, p) is not None]

    def _partition_meta(self, task: str, name: str) -> dict | None:
        m = self._meta_io.read(self.path / task / name, "partition")
        return m if m and m.get("complete") else None

    def partition(self, task: str, name: str) -> Partition:
        self._task(task)
        meta = self._partition_meta(task, name)
        if meta is None:
            raise KeyError(
                f"partition {name!r} of task {task!r} is not in store {self.path}; it has: {', '.join(self.partitions(task)) or 'none'}"
            )
        return Partition(self.path / task / name, self.backend, task, name, self.classes(task), meta)

    def normalization(self, task: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-mel-band mean and std of the task's train partition (float32)."""
        meta = self._partition_meta(task, "train")
        if meta is None or "mel_mean" not in meta:
            raise KeyError(f"task {task!r} in {self.path} has no train partition, so no normalisation statistics")
        return np.asarray(meta["mel_mean"], np.float32), np.asarray(meta["mel_std"], np.float32)

    def info(self) -> dict:
        """The store's summary as plain JSON-able data."""
        out: dict = {
            "path": str(self.path),
            "backend": self.backend,
            "feature_hash": self.feature_hash,
            "feature_config": dict(self.feature_config),
            "tasks": {},
        }
        for task in self.tasks:
            parts = {p: self.partition(task, p).summary() for p in self.partitions(task)}
            out["tasks"][task] = {
                "classes": self.classes(task),
                "feature_config": dict(self.feature_config),
                "partitions": parts,
            }
        return out

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.path)!r}, backend={self.backend!r}, tasks={self.tasks})"


def open_store(path) -> FeatureStore:
    """Opens the feature store at ``path`` (zarr or webdataset)."""
    return FeatureStore(Path(path))
