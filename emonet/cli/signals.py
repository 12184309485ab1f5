"""Ctrl-C and SIGTERM as exceptions, so a stopped run unwinds: ``finally`` blocks and context
managers run (worker pools are shut, staged work is kept for the resume) and the CLI prints
one resume message.

A terminal's Ctrl-C and ``timeout``/job schedulers signal the whole process group, forked
workers included. A worker killed where it stands can die holding a lock of its pool's queue,
and the parent then hangs shutting the pool down; so in forked children (which inherit these
handlers) SIGINT is ignored, the parent being the one that stops the run, and SIGTERM, which is
also how the parent's ``Pool.terminate()`` stops its workers, exits quietly through
``SystemExit`` so that locks held in ``with`` blocks are released."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived. A :class:`KeyboardInterrupt`, so code that cleans up after Ctrl-C
    does the same for a stop from a job scheduler or ``kill``."""

    exit_code = 128 + signal.SIGTERM


@contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block, in this process, SIGINT raises :class:`KeyboardInterrupt` and SIGTERM
    raises :class:`Terminated` (once: a second SIGTERM while unwinding is ignored so the cleanup
    can finish). Forked children: see the module docstring. Outside the main thread, where
    Python cannot install handlers, nothing changes.

    Yields:
        None; the previous handlers are restored on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()
    terminated = False

    def handler(signum, frame):
        nonlocal terminated
        if os.getpid() != owner:  # a forked worker
            if signum == signal.SIGTERM:
                raise SystemExit(Terminated.exit_code)
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt()
        if not terminated:
            terminated = True
            raise Terminated()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
