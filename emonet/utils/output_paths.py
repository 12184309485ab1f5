"""Output files that never replace an input and never appear half-written: checked before any
work (a folder, a missing parent folder, a read-only or unwritable folder, an existing file
without ``--overwrite``, one of the command's own inputs) and written atomically, without
``--overwrite`` never over a file that appeared meanwhile (another process writing the same
output)."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from emonet.errors import EmoNetError
from emonet.utils.fs import FilesystemError, atomic_write_bytes, describe_os_error


def _same_files(path: Path, inputs: Iterable[str | os.PathLike]) -> Iterable[Path]:
    """The inputs that are the file ``path``: the same resolved path (symlinks followed) or the
    same inode (hard links)."""
    target = path.resolve()
    try:
        st = path.stat()
    except OSError:
        st = None  # a new file: only a path can match it
    for item in inputs:
        item = Path(item)
        if item.resolve() == target:
            yield item
        elif st is not None:
            with contextlib.suppress(OSError):
                other = item.stat()
                if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                    yield item


def _probe_writable(folder: Path, name: str) -> None:
    """Create and remove an empty file in ``folder``: the one reliable test that it can be
    written (root ignores permission bits, a read-only mount does not)."""
    probe = folder / f".{name}.probe-{os.getpid()}"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    os.unlink(probe)


def check_output_file(
    path: str | os.PathLike,
    *,
    overwrite: bool,
    inputs: Iterable[str | os.PathLike] = (),
    option: str = "--output",
) -> Path:
    """Everything that can be known before the work about writing the file ``path``.

    Args:
        path: the file to write; a trailing ``/`` names a folder and is refused.
        overwrite: whether an existing file may be replaced.
        inputs: files and folders the command reads; the output may be none of them.
        option: the option or argument that named ``path``, for the messages.

    Returns:
        ``path`` as a Path.

    Raises:
        EmoNetError: a folder, one of the inputs, an existing file without ``--overwrite``.
        FilesystemError: no such parent folder, or a folder that cannot be written.
    """
    text = os.fspath(path)
    if not text.strip():
        raise EmoNetError(f"{option} is empty; name the file to write")
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir():
        raise EmoNetError(f"{text}: names a folder; {option} needs a file name (e.g. {path / 'predictions.csv'})")
    for item in _same_files(path, inputs):
        raise EmoNetError(
            f"{path}: is also an input of this command ({item}); outputs never replace inputs, choose another {option}"
        )
    if (path.exists() or path.is_symlink()) and not overwrite:  # a dangling link is a file there too
        raise EmoNetError(f"{path}: exists; choose another {option} or pass --overwrite")
    parent = path.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "no such folder"
        raise FilesystemError(f"{parent}: {what}; create it first or choose another {option}")
    try:
        _probe_writable(parent, path.name)
    except OSError as exc:
        raise FilesystemError(f"{describe_os_error(_unnamed(exc), path)}; choose another {option}") from None
    return path


def write_output_file(path: str | os.PathLike, data: bytes, *, overwrite: bool, option: str = "--output") -> Path:
    """Write ``data`` to ``path`` atomically (a temporary file beside it, fsync, rename; a
    failure leaves no temporary file and any older file intact). Without ``overwrite`` the
    file is created only if it still does not exist: another process that wrote it meanwhile
    keeps its file.

    Raises:
        EmoNetError: ``path`` appeared while this command ran (without ``overwrite``).
        FilesystemError: the write failed (full disk, read-only, ...); nothing was written.
    """
    path = Path(path)
    try:
        if overwrite:
            atomic_write_bytes(path, data)
        else:
            _write_new(path, data)
    except FileExistsError:
        raise EmoNetError(
            f"{path}: was created by another process while this command ran and is kept; "
            f"choose another {option} or pass --overwrite"
        ) from None
    except OSError as exc:
        raise FilesystemError(f"{describe_os_error(_unnamed(exc), path)}; nothing was written to {path}") from None
    return path


@contextlib.contextmanager
def output_errors(path: str | os.PathLike) -> Iterator[None]:
    """An OSError inside the block (writing ``path`` through a temporary file beside it)
    becomes a one-line FilesystemError that names ``path``, not the temporary file."""
    try:
        yield
    except FilesystemError:
        raise
    except OSError as exc:
        raise FilesystemError(f"{describe_os_error(_unnamed(exc), path)}; nothing was written to {path}") from None


def _unnamed(exc: OSError) -> OSError:
    """The error without its file name (often the temporary file's), for messages that name the output."""
    return OSError(exc.errno, exc.strerror or str(exc))


def _write_new(path: Path, data: bytes) -> None:
    """Write to a temporary file, then hard-link it to ``path``: the link fails if ``path``
    exists, so two writers cannot both take it. Filesystems without hard links fall back to
    a check then a rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        atomic_write_bytes(tmp, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
                raise
            if path.exists():
                raise FileExistsError(errno.EEXIST, "exists", str(path)) from None
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def free_name(path: str | os.PathLike, suffix: str) -> Path:
    """``path`` with ``suffix`` appended, or with ``-2``, ``-3``... after it when that file
    exists: a name that replaces nothing."""
    path = Path(path)
    candidate = path.with_name(path.name + suffix)
    n = 2
    while candidate.exists() or candidate.is_symlink():
        candidate = path.with_name(f"{path.name}{suffix}-{n}")
        n += 1
    return candidate
