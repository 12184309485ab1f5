"""A rich progress bar for extraction: files/s, hours of audio per second, ETA."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        elapsed = max(time.monotonic() - task.fields.get("t0", time.monotonic()), 1e-6)
        files = task.fields.get("new_files", 0) / elapsed
        hours = task.fields.get("new_seconds", 0.0) / 3600 / elapsed
        return Text(f"{files:,.0f} files/s  {hours:,.3f} audio h/s ({hours * 3600:,.0f}x real time)", style="cyan")


class RichProgress:
    """Implements the extraction runner's ProgressSink."""

    def __init__(self, console: Console | None = None, enabled: bool = True):
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self._p: Progress | None = None
        self._task = None
        self._pending = [0, 0, 0.0]  # files advanced, new files, new seconds since the last refresh
        self._last = 0.0

    def begin(self, total_files: int, total_seconds: float) -> None:
        if not self.enabled or total_files == 0:
            return
        self._p = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._p.start()
        self._task = self._p.add_task(
            "extracting", total=total_files, t0=time.monotonic(), new_files=0, new_seconds=0.0
        )

    def partition(self, task: str, partition: str) -> None:
        if self._p is not None:
            self._p.update(self._task, description=f"{task}/{partition}")

    def advance(self, files: int, seconds: float, resumed: bool = False) -> None:
        if self._p is None:
            return
        pend = self._pending
        pend[0] += files
        if not resumed:  # work finished before a crash does not count towards the rates
            pend[1] += files
            pend[2] += seconds
        now = time.monotonic()
        if now - self._last > 0.1:  # refresh at most 10 times a second: cheap per file
            self._flush(now)

    def _flush(self, now: float) -> None:
        t = self._p.tasks[0]
        files, new, secs = self._pending
        self._p.update(
            self._task,
            advance=files,
            new_files=t.fields["new_files"] + new,
            new_seconds=t.fields["new_seconds"] + secs,
        )
        self._pending = [0, 0, 0.0]
        self._last = now

    def end(self) -> None:
        if self._p is not None:
            self._flush(time.monotonic())
            self._p.stop()
            self._p = None
