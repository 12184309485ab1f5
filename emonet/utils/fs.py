"""Small filesystem helpers: atomic writes and sizes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def tree_size(path: Path) -> int:
    """Bytes of all files below ``path``."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def remove_tree(path: Path) -> None:
    """Remove a folder by first renaming it aside, so a crash never leaves it half-deleted
    under its real name."""
    path = Path(path)
    if not path.exists():
        return
    trash = path.with_name(f".{path.name}.deleting-{os.getpid()}")
    os.replace(path, trash)
    shutil.rmtree(trash)
