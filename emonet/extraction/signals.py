"""Ctrl-C and ``kill`` during an extraction: SIGINT and SIGTERM end the run with an
:class:`Interrupted` error (exit status 130 / 143) whose message says how to resume.

A real Ctrl-C reaches the whole process group, the worker processes included. The
workers ignore SIGINT (see ``emonet.extraction.blocks``); the main process stops, and
closing the pool ends them. Finished blocks and partitions are kept, as after kill -9."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from emonet.errors import EmoNetError

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(EmoNetError):
    """The run was stopped by a signal; ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum: int):
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name}: re-run the same command to resume; finished work is kept")
        self.signum = signum
        self.exit_code = 128 + signum


def _raise(signum, _frame) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """While inside, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread (the
    previous handlers come back afterwards). Elsewhere than the main thread: no change."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise) for s in HANDLED}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def ignore_in_worker() -> None:
    """In a worker process: leave SIGINT to the parent and die on SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
