"""Real read-only and full file systems for tests (root ignores permission bits, so chmod
proves nothing): small tmpfs mounts, skipped with a reason where mounting is not permitted."""

from __future__ import annotations

import contextlib
import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(args: list[str]) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); needs root in a host or VM")


@contextlib.contextmanager
def tmpfs(folder: Path, *, read_only: bool = False, size: str = "64k") -> Iterator[Path]:
    """A fresh tmpfs of ``size`` on ``folder`` (created), read-only if asked; unmounted after."""
    folder.mkdir(parents=True, exist_ok=True)
    _mount(["-t", "tmpfs", "-o", f"size={size}" + (",ro" if read_only else ""), "tmpfs", str(folder)])
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, name: str = "filler") -> Path:
    """Write zeros into ``folder / name`` until the file system is full."""
    path = folder / name
    with open(path, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return path
