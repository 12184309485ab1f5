"""One ``emonet run`` at a time per workdir: a second one on the same workdir is refused at
once, with one line, before it runs anything (it does not wait: a pipeline can run for hours,
and two runs of one pipeline would do the same work twice)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from emonet.errors import EmoNetError
from emonet.utils.fs import FilesystemError, describe_os_error

LOCK_FILE = ".emonet-pipeline.lock"


class WorkdirBusy(EmoNetError):
    """Another ``emonet run`` holds the workdir."""


@contextlib.contextmanager
def workdir_lock(workdir: Path, pipeline_file: Path) -> Iterator[None]:
    """Create the workdir and hold it (an exclusive lock on ``WORKDIR/.emonet-pipeline.lock``,
    released when the block ends or the process dies, ``kill -9`` included).

    Raises:
        WorkdirBusy: another ``emonet run`` holds it.
        FilesystemError: the workdir cannot be made or written (one line).
    """
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        fh = open(workdir / LOCK_FILE, "a+")  # noqa: SIM115 (kept open: the lock lives with it)
    except OSError as exc:
        raise FilesystemError(
            f"{pipeline_file}: workdir {describe_os_error(exc, workdir)}; "
            "give a workdir you can write to (--workdir DIR); nothing was run"
        ) from None
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise WorkdirBusy(
                f"{pipeline_file}: workdir {workdir} is in use by another emonet run ({holder}); "
                "wait for it to end, or give another --workdir"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}\n")
        fh.flush()
        yield
    finally:
        fh.close()
