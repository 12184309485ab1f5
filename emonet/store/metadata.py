"""Metadata I/O of a feature store: the root, task and partition records, shared by both
backends (each keeps them in its own files, see :mod:`emonet.store.backends`).

    STORE/                          root: format, backend, codec, feature config (+ emonet-store.yaml)
    STORE/<task>/                   a task: its classes (label map, fixed from train)
    STORE/<task>/<partition>/       train | devel | test, complete: per-utterance arrays
    STORE/.staging/<task>/<part>/   a partition being written; renamed into place when done

A partition only ever appears under its real name complete (an atomic rename), so a
store never looks complete when it is not.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from emonet.store.backends import BACKENDS, Backend
from emonet.store.codec import DEFAULT
from emonet.utils.fs import atomic_write_bytes

FORMAT = "emonet-feature-store"
FORMAT_VERSION = 1
STAGING = ".staging"
LOCK = ".lock"
CONFIG_YAML = "emonet-store.yaml"


def detect_backend(root: Path) -> Backend | None:
    """The backend of the store at ``root``, or None if it is not an emonet store."""
    for backend in BACKENDS.values():
        if backend.read_meta(root, "store") is not None:
            return backend
    return None


def write_root(root: Path, backend: Backend, feature_config: dict, feature_hash: str, codec: str = DEFAULT) -> None:
    """Writes the root record (format, backend, the ``--codec`` that writes its frames,
    feature config) and its YAML copy."""
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "backend": backend.name,
        "codec": codec,
        "feature_config": feature_config,
        "feature_hash": feature_hash,
    }
    backend.write_meta(root, "store", meta)
    text = "# emonet feature store: the feature config its log-mels were computed with\n"
    text += yaml.safe_dump(
        {"backend": backend.name, "codec": codec, "feature_hash": feature_hash, "feature_config": feature_config},
        sort_keys=False,
    )
    atomic_write_bytes(root / CONFIG_YAML, text.encode())


def recorded_codec(meta: dict) -> str:
    """The ``--codec`` a store's root record names; stores written before the option
    existed were all written with the default."""
    return str(meta.get("codec", DEFAULT))


def store_files(root: Path, backend: Backend) -> set[str]:
    """Names of the files and folders the store itself keeps at its root (tasks aside)."""
    return {backend.meta_file_name("store"), CONFIG_YAML, STAGING, LOCK}


def task_dirs(root: Path, backend: Backend) -> dict[str, dict]:
    """task name -> task metadata, for every complete task folder."""
    out = {}
    if not root.is_dir():
        return out
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            meta = backend.read_meta(child, "task")
            if meta is not None:
                out[child.name] = meta
    return out
