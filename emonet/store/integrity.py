"""Checks of stored bytes: every block file's CRC-32 and a digest of the per-utterance
index are kept in the partition's metadata when it is committed; the index is checked when
a partition is opened, a block's bytes each time its file is read. A failed check is a
:class:`StoreCorruptError` that names the partition and the block; corrupt or missing
bytes never come back as features."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from emonet.errors import StoreCorruptError
from emonet.store.backends import PartitionReader
from emonet.utils.checksum import crc32
from emonet.utils.fs import FilesystemError, describe_os_error, filesystem_errors

FIX = "restore the store from a copy, or re-run the 'emonet extract' command that made it with --overwrite"


def index_digest(reader: PartitionReader) -> str:
    """sha256 of the per-utterance arrays and block edges as read back."""
    h = hashlib.sha256()
    h.update(json.dumps(reader.files).encode())
    for arr, dtype in (
        (reader.labels, np.int64),
        (reader.offsets, np.int64),
        (reader.seconds, np.float64),
        (reader.block_bounds, np.int64),
    ):
        h.update(np.ascontiguousarray(arr, dtype=dtype).tobytes())
    return h.hexdigest()


@contextlib.contextmanager
def corrupt_on_error(where: str, what: str) -> Iterator[None]:
    """Turns a failure to read or decode stored bytes into a StoreCorruptError (a missing
    permission stays a FilesystemError)."""
    try:
        with filesystem_errors(where, hint="check the store's permissions"):
            yield
    except (StoreCorruptError, FilesystemError):
        raise
    except Exception as exc:  # any decoder's error on damaged bytes (blosc, zip, json, zarr)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreCorruptError(f"{where}: {what} is unreadable ({reason[:120]}); {FIX}") from None


def check_index(where: str, reader: PartitionReader, meta: dict) -> None:
    """The index read back matches the digest and counts recorded at commit."""
    expected = meta.get("index_sha256")
    n_blocks = len(reader.block_bounds) - 1
    if len(reader.files) != meta.get("files", len(reader.files)) or (expected and index_digest(reader) != expected):
        raise StoreCorruptError(f"{where}: the per-utterance index fails its checksum (corrupt); {FIX}")
    crcs = meta.get("block_crc32")
    if crcs is not None and len(crcs) != n_blocks:
        raise StoreCorruptError(f"{where}: metadata lists {len(crcs)} blocks, the index {n_blocks} (corrupt); {FIX}")


def missing_blocks(reader: PartitionReader) -> list[int]:
    """Blocks whose file is not on disk."""
    return [k for k in range(len(reader.block_bounds) - 1) if not reader.block_path(k).is_file()]


def check_blocks_exist(where: str, reader: PartitionReader) -> None:
    missing = missing_blocks(reader)
    if missing:
        shown = ", ".join(str(k) for k in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise StoreCorruptError(
            f"{where}: {len(missing)} block file(s) missing (block {shown}: {reader.block_path(missing[0])}); {FIX}"
        )


Stamp = tuple[int, int, int, int]  # a file's device, inode, size and modification time (ns)


def _stamp(st: os.stat_result) -> Stamp:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def read_block_file(where: str, path: Path, k: int, crc: int | None) -> tuple[bytes, Stamp]:
    """Block k's file as it is on disk now, read once and checked against its CRC-32
    (``crc``; None: not checked), with the stamp of the file that was read. A missing
    file is a StoreCorruptError, never a block of zeros."""
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            blob = fh.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise StoreCorruptError(f"{where}: block {k} is missing ({path}); {FIX}") from None
    except OSError as exc:
        raise FilesystemError(f"{describe_os_error(exc, path)}; check the store's permissions") from None
    if crc is not None and crc32(blob) != crc:
        raise StoreCorruptError(f"{where}: block {k} ({path}) fails its checksum (corrupt); {FIX}")
    return blob, _stamp(st)


def unchanged(path: Path, stamp: Stamp) -> bool:
    """Whether ``path`` is still the file that was read with ``stamp`` (not deleted,
    replaced, truncated or rewritten since)."""
    try:
        return _stamp(os.stat(path)) == stamp
    except OSError:
        return False
