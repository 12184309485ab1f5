"""On-disk layout and metadata of a feature store, shared by both backends.

    STORE/                          root: format, backend, feature config (+ emonet-store.yaml)
    STORE/<task>/                   a task: its classes (label map, fixed from train)
    STORE/<task>/<partition>/       train | devel | test, complete: per-utterance arrays
    STORE/.staging/<task>/<part>/   a partition being written; renamed into place when done

A partition only ever appears under its real name complete (an atomic rename), so a
store never looks complete when it is not. The zarr backend keeps the metadata in zarr
group attributes; the webdataset backend in JSON files with the same content.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from emonet.utils.fs import atomic_write_bytes, atomic_write_json, read_json

FORMAT = "emonet-feature-store"
FORMAT_VERSION = 1
BACKENDS = ("zarr", "webdataset")
STAGING = ".staging"
META_KEY = "emonet"
CONFIG_YAML = "emonet-store.yaml"


class MetaIO:
    """Reads and writes the root, task and partition metadata dicts of one backend."""

    def __init__(self, backend: str):
        if backend not in BACKENDS:
            raise ValueError(f"unknown store format {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.backend = backend

    # -- generic node metadata -------------------------------------------------------
    def write(self, node: Path, kind: str, meta: dict) -> None:
        node.mkdir(parents=True, exist_ok=True)
        payload = {"kind": kind, **meta}
        if self.backend == "zarr":
            import zarr

            zarr.open_group(str(node), mode="a", zarr_format=3).attrs.put({META_KEY: payload})
        else:
            atomic_write_json(node / f"{kind}.json", {META_KEY: payload})

    def read(self, node: Path, kind: str) -> dict | None:
        """The node's metadata, or None if it is not an emonet node of that kind."""
        if self.backend == "zarr":
            zjson = node / "zarr.json"
            if not zjson.is_file():
                return None
            attrs = read_json(zjson).get("attributes", {})
        else:
            f = node / f"{kind}.json"
            if not f.is_file():
                return None
            attrs = read_json(f)
        meta = attrs.get(META_KEY)
        if not isinstance(meta, dict) or meta.get("kind") != kind:
            return None
        return {k: v for k, v in meta.items() if k != "kind"}


def detect_backend(root: Path) -> str | None:
    """The backend of the store at ``root``, or None if it is not an emonet store."""
    for backend in BACKENDS:
        if MetaIO(backend).read(root, "store") is not None:
            return backend
    return None


def write_root(root: Path, backend: str, feature_config: dict, feature_hash: str) -> None:
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "backend": backend,
        "feature_config": feature_config,
        "feature_hash": feature_hash,
    }
    MetaIO(backend).write(root, "store", meta)
    text = "# emonet feature store: the feature config its log-mels were computed with\n"
    text += yaml.safe_dump(
        {"backend": backend, "feature_hash": feature_hash, "feature_config": feature_config}, sort_keys=False
    )
    atomic_write_bytes(root / CONFIG_YAML, text.encode())


def task_dirs(root: Path, meta: MetaIO) -> dict[str, dict]:
    """task name -> task metadata, for every complete task folder."""
    out = {}
    if not root.is_dir():
        return out
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            m = meta.read(child, "task")
            if m is not None:
                out[child.name] = m
    return out
