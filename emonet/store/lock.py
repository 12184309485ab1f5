"""The writers' lock on a store: an OS file lock (``flock``) on ``STORE/.lock``.

Only writers (``emonet extract``) take it; readers never do, and never wait. A second
writer waits until the first is done (``on_wait`` is told once), then re-reads the store
and adds its own tasks, so two runs adding different tasks both end up in the store. The
kernel releases the lock when the holder's process ends, however it ends (kill -9
included), so a lock is never stale."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path

from emonet.errors import StoreError
from emonet.store.metadata import LOCK
from emonet.utils.fs import filesystem_errors, remove_stale_temp_files


class StoreLock:
    """An exclusive writer's lock on the store at ``root`` (created if missing).

    Args:
        root: the store's folder.
        on_wait: called once with a message if another writer holds the lock.
        timeout: seconds to wait at most (None: no limit); then StoreError.
    """

    def __init__(self, root: Path, on_wait: Callable[[str], None] | None = None, timeout: float | None = None):
        self.root = Path(root)
        self.on_wait = on_wait
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self) -> StoreLock:
        with filesystem_errors(self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            self._wait_for(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        _remove_stale_temp_files(self.root)
        return self

    def _wait_for(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if self.on_wait is not None:
            self.on_wait(f"{self.root}: another emonet extract is writing into this store; waiting for it to finish")
        t0 = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if self.timeout is not None and time.monotonic() - t0 > self.timeout:
                    raise StoreError(
                        f"{self.root}: another emonet extract still holds the store after {self.timeout:.0f} s; "
                        "wait for it or stop it, then re-run"
                    ) from None
                time.sleep(0.05)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _remove_stale_temp_files(root: Path, depth: int = 4) -> None:
    """Under the writer's lock: the temporary files (``.NAME.tmp-PID``) and half-deleted folders
    that a writer killed with ``kill -9`` left in the store's folders (root, tasks, partitions,
    staging), down to ``depth`` levels; never those of a process that is still running."""
    folders = [root]
    for level in range(depth):
        for folder in folders:
            remove_stale_temp_files(folder)
        if level + 1 < depth:  # list the next level only when it is swept
            folders = [sub for f in folders for sub in f.iterdir() if sub.is_dir() and not sub.is_symlink()]
