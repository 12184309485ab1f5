"""Reading a feature store through one API, whatever its backend."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np

from emonet.errors import StoreCorruptError, StoreError, UnknownTaskError
from emonet.store import integrity, metadata
from emonet.store.backends import Backend
from emonet.store.names import PARTITIONS
from emonet.utils.fs import tree_size

HELD_BLOCKS = 2  # blocks whose checked bytes an open partition keeps (a read that crosses into the next)


class Partition(Sequence):
    """One complete partition of one task: a sequence of ``(file, label, logmel)`` items.

    ``file`` is the csv's file key, ``label`` the label string (None if unlabelled) and
    ``logmel`` a float32 array [frames, n_mels]. Iteration reads whole blocks (shards) and
    slices them in memory, which is far faster than indexing item by item.

    Args:
        path: the partition's folder (``STORE/<task>/<partition>``).
        backend: the store's backend (see :mod:`emonet.store.backends`).
        task, name: the task and partition names (for messages).
        classes: the task's class names; label ids index them.
        meta: the partition's metadata record.
        verify: check the index digest and that every block file exists on opening, and
            a block's CRC-32 every time its file is read (default). A failed check raises
            :class:`~emonet.errors.StoreCorruptError` naming the partition and block.
            Without it the checksums are skipped; a missing block file is still an error.

    Every read of frames reads the files of the blocks they lie in, once each, checks those
    bytes and decodes the frames from them. The last :data:`HELD_BLOCKS` blocks' checked
    bytes are kept and reused while their files are unchanged on disk (same inode, size
    and modification time); a block file deleted, replaced or rewritten since is read and
    checked again.
    """

    def __init__(
        self, path: Path, backend: Backend, task: str, name: str, classes: list[str], meta: dict, verify: bool = True
    ):
        self.path, self.task, self.name = Path(path), task, name
        self.classes = list(classes)
        self.meta = meta
        self.verify = verify
        self._where = f"{self.path} (partition {task}/{name})"
        with integrity.corrupt_on_error(self._where, "the per-utterance index"):
            self._reader = backend.open_partition(self.path)
        self._crcs = meta.get("block_crc32") if verify else None
        self._held: OrderedDict[int, tuple[integrity.Stamp, bytes]] = OrderedDict()
        if verify:
            integrity.check_index(self._where, self._reader, meta)
            integrity.check_blocks_exist(self._where, self._reader)
        self.files: list[str] = self._reader.files
        self.label_ids: np.ndarray = self._reader.labels
        self.offsets: np.ndarray = self._reader.offsets
        self.lengths: np.ndarray = np.diff(self.offsets)
        self.seconds: np.ndarray = self._reader.seconds
        self._window: tuple[int, int, np.ndarray] | None = None

    @property
    def labels(self) -> list[str | None]:
        return [self.classes[i] if i >= 0 else None for i in self.label_ids]

    @property
    def labelled(self) -> bool:
        return bool(self.meta.get("labelled", True))

    @property
    def block_bounds(self) -> np.ndarray:
        """Frame offsets of the storage blocks' edges (0 ... total frames)."""
        return self._reader.block_bounds

    @property
    def n_blocks(self) -> int:
        return len(self._reader.block_bounds) - 1

    def __len__(self) -> int:
        return len(self.files)

    def _label(self, i: int) -> str | None:
        k = int(self.label_ids[i])
        return self.classes[k] if k >= 0 else None

    def _block_bytes(self, k: int) -> bytes:
        """Block k's file bytes: held ones while the file is unchanged, else read (and
        checked, with ``verify``) now."""
        path = self._reader.block_path(k)
        held = self._held.pop(k, None)
        if held is None or not integrity.unchanged(path, held[0]):
            crc = self._crcs[k] if self._crcs is not None else None
            blob, stamp = integrity.read_block_file(self._where, path, k, crc)
            held = (stamp, blob)
        self._held[k] = held
        while len(self._held) > HELD_BLOCKS:
            self._held.popitem(last=False)
        return held[1]

    def _block_frames(self, k: int, a: int, z: int) -> np.ndarray:
        """float16 frames ``a:z`` of block k (counted from its first frame)."""
        blob = self._block_bytes(k)
        with integrity.corrupt_on_error(f"{self._where}: block {k}", "the block"):
            frames = self._reader.decode(k, blob, a, z)
        if frames.shape[0] != z - a:
            raise StoreCorruptError(
                f"{self._where}: block {k} decodes to {frames.shape[0]} frames where the index has {z - a} "
                f"(corrupt); {integrity.FIX}"
            )
        return frames

    def read_block(self, k: int) -> np.ndarray:
        """float16 frames of storage block k, read from its file and checked (with
        ``verify``) before decoding."""
        b = self._reader.block_bounds
        return self._block_frames(k, 0, int(b[k + 1] - b[k]))

    def read_frames(self, lo: int, hi: int) -> np.ndarray:
        """float16 frames ``lo:hi`` [hi - lo, mels] (partition offsets, across utterances),
        decoded (only the needed part) from the bytes of each block they lie in: read and
        checked on this call, or held from an earlier checked read while the block's file is
        unchanged. IndexError for a range outside the partition."""
        lo, hi = int(lo), int(hi)
        if hi <= lo:
            return np.zeros((0, int(self.meta.get("n_mels", 0))), np.float16)
        b = self._reader.block_bounds
        k0 = int(np.searchsorted(b, lo, side="right") - 1)
        k1 = int(np.searchsorted(b, hi, side="left"))
        if k0 < 0 or k1 >= len(b):
            raise IndexError(f"frames {lo}-{hi} are outside partition {self.task}/{self.name}")
        pieces = [
            self._block_frames(k, max(lo, int(b[k])) - int(b[k]), min(hi, int(b[k + 1])) - int(b[k]))
            for k in range(k0, k1)
        ]
        return np.concatenate(pieces) if len(pieces) > 1 else pieces[0]

    def prefetch(self, lo: int, hi: int) -> None:
        """Asks the OS to start reading the files of the blocks that frames ``lo:hi`` lie in
        (``posix_fadvise(WILLNEED)``: the kernel reads them in the background), so that
        reading them later overlaps with other work instead of waiting for the disk. Blocks
        whose checked bytes are held are skipped; so are platforms without ``posix_fadvise``.
        Nothing is checked here: a missing or unreadable file is reported by the read."""
        advise = getattr(os, "posix_fadvise", None)
        if advise is None or hi <= lo:
            return
        b = self._reader.block_bounds
        k0 = max(int(np.searchsorted(b, int(lo), side="right") - 1), 0)
        k1 = min(int(np.searchsorted(b, int(hi), side="left")), len(b) - 1)
        for k in range(k0, k1):
            if k in self._held:
                continue
            try:
                fd = os.open(self._reader.block_path(k), os.O_RDONLY)
            except OSError:
                continue
            try:
                advise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
            except OSError:
                pass
            finally:
                os.close(fd)

    def logmel(self, i: int, dtype=np.float32) -> np.ndarray:
        """The log-mel of item i, [frames, n_mels]."""
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        w = self._window
        if w is not None and w[0] <= lo and hi <= w[1]:
            return w[2][lo - w[0] : hi - w[0]].astype(dtype)
        return self.read_frames(lo, hi).astype(dtype)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for partition {self.task}/{self.name} of {n} items")
        i %= n
        return self.files[i], self._label(i), self.logmel(i)

    def __iter__(self) -> Iterator[tuple[str, str | None, np.ndarray]]:
        b = self._reader.block_bounds
        k = 0
        win_lo, win = 0, np.zeros((0, 0), np.float16)
        for i in range(len(self)):
            lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
            while hi > win_lo + len(win):  # extend the window with the next blocks
                keep = win[lo - win_lo :] if lo < win_lo + len(win) else None
                nxt = self.read_block(k)
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
        """files, frames, seconds, label counts, skipped rows, bytes on disk, compression."""
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

    def __init__(self, path: Path, verify: bool = True):
        self.path = Path(path)
        self.verify = verify
        if not self.path.is_dir():
            raise StoreError(
                f"{self.path}: no feature store here (folder not found); "
                f"create one with 'emonet extract --store {self.path} ...'"
            )
        backend = metadata.detect_backend(self.path)
        if backend is None:
            raise StoreError(f"{self.path}: not an emonet feature store (no store metadata); check the path")
        self.backend: str = backend.name
        self._backend = backend
        self.meta = backend.read_meta(self.path, "store")
        if self.meta.get("version", 0) > metadata.FORMAT_VERSION:
            raise StoreError(
                f"{self.path}: store format version {self.meta['version']} is newer than this emonet reads "
                f"({metadata.FORMAT_VERSION}); upgrade emonet"
            )
        self._tasks = metadata.task_dirs(self.path, backend)

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
            raise UnknownTaskError(
                f"task {task!r} is not in store {self.path}; it has: {', '.join(self._tasks) or 'no tasks'}"
            )
        return self._tasks[task]

    def classes(self, task: str) -> list[str]:
        """The task's class names, in label-id order (UnknownTaskError if absent)."""
        return list(self._task(task)["classes"])

    def partitions(self, task: str) -> list[str]:
        """The task's complete partitions, in train, devel, test order."""
        self._task(task)
        return [p for p in PARTITIONS if self._partition_meta(task, p) is not None]

    def _partition_meta(self, task: str, name: str) -> dict | None:
        if name not in PARTITIONS:
            return None
        m = self._backend.read_meta(self.path / task / name, "partition")
        return m if m and m.get("complete") else None

    def partition(self, task: str, name: str) -> Partition:
        """The complete partition ``name`` of ``task`` (UnknownTaskError if absent)."""
        self._task(task)
        meta = self._partition_meta(task, name)
        if meta is None:
            raise UnknownTaskError(
                f"partition {name!r} of task {task!r} is not in store {self.path}; "
                f"it has: {', '.join(self.partitions(task)) or 'none'}"
            )
        return Partition(self.path / task / name, self._backend, task, name, self.classes(task), meta, self.verify)

    def normalization(self, task: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-mel-band mean and std of the task's train partition (float32)."""
        self._task(task)
        meta = self._partition_meta(task, "train")
        if meta is None or "mel_mean" not in meta:
            raise UnknownTaskError(
                f"task {task!r} in {self.path} has no train partition, so no normalisation statistics"
            )
        if not meta.get("files"):
            raise StoreError(
                f"{self.path / task / 'train'}: task {task!r} has an empty train partition (every row was skipped); "
                "re-extract it with usable training files"
            )
        mean, std = np.asarray(meta["mel_mean"], np.float32), np.asarray(meta["mel_std"], np.float32)
        if not (np.isfinite(mean).all() and np.isfinite(std).all()):
            raise StoreCorruptError(
                f"{self.path / task / 'train'}: task {task!r} has non-finite normalisation statistics; "
                "re-extract the task with --overwrite"
            )
        return mean, std

    def info(self) -> dict:
        """The store's summary as plain JSON-able data. Opening each partition checks its
        index and that every block file exists (StoreCorruptError otherwise)."""
        out: dict = {
            "path": str(self.path),
            "backend": self.backend,
            **({"codec": self.meta["codec"]} if self.meta.get("codec") else {}),  # none before --codec
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


def open_store(path, verify: bool = True) -> FeatureStore:
    """Opens the feature store at ``path`` (zarr or webdataset) for reading.

    Args:
        path: the store's folder.
        verify: check stored bytes against their checksums on read (default; see
            :class:`Partition`). ``False`` skips the checks, for speed comparisons.

    Returns:
        The :class:`FeatureStore`. Raises StoreError if ``path`` is not a store.
    """
    return FeatureStore(Path(path), verify=verify)
