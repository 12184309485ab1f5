"""Small filesystem helpers: the one atomic write, sizes, removal, and filesystem failures
as one-line :class:`FilesystemError`s."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from emonet.errors import StoreError


class FilesystemError(StoreError):
    """The filesystem refused a read or write (no permission, disk full, a path under a
    file). The message names the path; nothing already written is lost."""

    exit_code = 1


_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "Not a directory (a path component is a file)",
}


def describe_os_error(exc: OSError, fallback: Path | str | None = None) -> str:
    """One line for an OSError: the path it concerns and the reason in words."""
    where = exc.filename or fallback
    reason = _REASONS.get(exc.errno or 0) or exc.strerror or str(exc)
    return f"{where}: {reason}" if where else reason


@contextlib.contextmanager
def filesystem_errors(path: Path | str | None = None, hint: str = "") -> Iterator[None]:
    """Turns an OSError raised inside the block into a one-line FilesystemError that names
    the path (``path`` when the error names none) and says what to check."""
    try:
        yield
    except FilesystemError:
        raise
    except OSError as exc:
        hint = hint or "check the path, its permissions and free space (finished work is kept; re-run to resume)"
        raise FilesystemError(f"{describe_os_error(exc, path)}; {hint}") from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` so that readers see the old or the new file, never part
    of one: a temporary file beside it, fsync, rename over it. The temporary file is
    removed if the write fails (a full disk leaves nothing behind)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_json(path: Path, obj) -> None:
    """:func:`atomic_write_bytes` of ``obj`` as indented, key-sorted JSON."""
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def read_json(path: Path):
    """The JSON document in ``path`` (ValueError if it is not JSON)."""
    return json.loads(Path(path).read_text())


def tree_size(path: Path) -> int:
    """Bytes of all files below ``path``."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, f))
    return total


def remove_tree(path: Path) -> None:
    """Removes a folder by first renaming it aside, so a crash never leaves it half-deleted
    under its real name."""
    path = Path(path)
    if not path.exists():
        return
    trash = path.with_name(f".{path.name}.deleting-{os.getpid()}")
    os.replace(path, trash)
    shutil.rmtree(trash)


_STALE = re.compile(r"^\..+\.(tmp|deleting)-(\d+)$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_temp_files(folder: Path | str) -> list[Path]:
    """Removes what :func:`atomic_write_bytes` (``.NAME.tmp-PID``) and :func:`remove_tree`
    (``.NAME.deleting-PID``) left in ``folder`` (not below it) when their process was killed
    (``kill -9``, a power cut): only entries whose PID is no longer running. Call it when a
    folder is opened for writing (under its lock).

    Returns:
        The paths removed.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        m = _STALE.match(entry.name)
        if m is None or int(m.group(2)) == os.getpid() or _pid_alive(int(m.group(2))):
            continue
        with contextlib.suppress(FileNotFoundError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed
