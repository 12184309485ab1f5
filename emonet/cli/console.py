"""The two rich consoles every command prints to: results on stdout, progress and errors on stderr."""

from __future__ import annotations

from rich.console import Console


def _console(stderr: bool = False) -> Console:
    c = Console(stderr=stderr)
    if not c.is_terminal:  # piped or captured: don't squeeze tables into 80 columns
        c = Console(stderr=stderr, width=160)
    return c


out = _console()
err = _console(stderr=True)
