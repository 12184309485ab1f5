"""Utterances that several partitions of one run list (EmoBox's folds: each file is in the
train or devel of K-1 folds and the test of one) are decoded once: the first block that
needs one computes its features and keeps them in ``STORE/.staging/shared/`` (one ``.npy``
of the storage dtype per utterance), and later blocks read them, so the stored frames are
the same bits. The store itself keeps each partition's frames apart (a partition's shards
have one writer and their own checksums), so the features are stored once per partition.

A kept file is named by the feature config and the audio file's path, segment, size and
modification time, so a file changed between a killed run and its resume is decoded again.
Written to a temporary name and renamed, so two workers computing the same utterance at
once both leave a whole file. The folder is removed when the run has written everything."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emonet.extraction.featurize import Featurizer
from emonet.store import metadata
from emonet.store.staging import BlockItem, BlockJob
from emonet.utils.fs import remove_tree

FOLDER = "shared"  # inside the store's staging folder


def shared_folder(store: Path) -> Path:
    return Path(store) / metadata.STAGING / FOLDER


@dataclass(frozen=True)
class SharedFeatures:
    """Which utterances of one block are shared (their features kept in ``folder``)."""

    folder: Path
    tag: str  # the feature config's fingerprint
    keys: frozenset  # (path, segment) of the utterances listed more than once

    @classmethod
    def of(cls, store: Path, tag: str, contents) -> SharedFeatures:
        """The utterances that more than one of the partitions ``contents`` list."""
        counts = Counter(
            (p, c.segment(i)) for c in contents for i, p in enumerate(c.paths)
        )  # one partition lists a key once
        return cls(shared_folder(store), tag, frozenset(k for k, n in counts.items() if n > 1))

    def for_job(self, job: BlockJob) -> SharedFeatures | None:
        """This cache narrowed to the block's items (small to send to a worker), or None."""
        keys = frozenset((it.path, it.segment) for it in job.items) & self.keys
        return SharedFeatures(self.folder, self.tag, keys) if keys else None

    def file(self, item: BlockItem) -> Path | None:
        """Where the item's features are kept, or None (not shared, or its file cannot be
        read: then decoding reports why)."""
        if (item.path, item.segment) not in self.keys:
            return None
        try:
            st = os.stat(item.path)
        except OSError:
            return None
        name = f"{self.tag}|{item.path}|{item.segment}|{st.st_size}|{st.st_mtime_ns}"
        return self.folder / (hashlib.sha256(name.encode()).hexdigest()[:32] + ".npy")


def features(
    featurizer: Featurizer, job: BlockJob, shared: SharedFeatures | None, threads: int = 0
) -> Iterator[np.ndarray]:
    """The features of the block's items in order: read where another partition's block kept
    them, else computed (and kept where shared)."""
    items = job.items
    if shared is None:
        yield from featurizer.many([it.path for it in items], threads, [it.segment for it in items])
        return
    shared.folder.mkdir(parents=True, exist_ok=True)
    for it in items:
        path = shared.file(it)
        if path is not None and path.is_file():
            yield np.load(path)
            continue
        x = featurizer(it.path, it.segment)
        if path is not None:
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                np.save(f, x)
            os.replace(tmp, path)
        yield x


def remove_shared(store: Path) -> None:
    """Removes the kept features (the run has written every partition)."""
    folder = shared_folder(store)
    if folder.is_dir():
        remove_tree(folder)
