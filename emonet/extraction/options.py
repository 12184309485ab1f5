"""What an extraction is asked (:class:`ExtractOptions`) and what it reports."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from emonet.data.features import FeatureConfig
from emonet.data.partitions import TaskSources
from emonet.errors import ConfigError
from emonet.store.backends import get_backend
from emonet.store.codec import DEFAULT as DEFAULT_CODEC
from emonet.store.codec import get_codec
from emonet.store.names import check_task_name


@dataclass
class ExtractOptions:
    """Everything one ``emonet extract`` run needs.

    ``codec`` names the compression setting of the frames (both backends; recorded in the
    store, and every later run into it must ask the same). ``workers`` is capped at the
    CPU count (and, when writing, at the number of blocks); 0 or 1 computes in this process.
    Task names are checked (plain names, see :func:`emonet.store.names.check_task_name`)
    before anything is read or written."""

    store: Path
    data_path: Path
    sources: list[TaskSources]
    features: FeatureConfig = field(default_factory=FeatureConfig)
    backend: str = "zarr"  # zarr | webdataset
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    device: str = "cpu"
    overwrite: bool = False
    skip_bad: bool = False
    frames_per_shard: int | None = None  # zarr shard / webdataset tar size, in frames
    codec: str = DEFAULT_CODEC  # the frames' compression: a name of emonet.store.codec.CODECS

    def __post_init__(self) -> None:
        self.store, self.data_path = Path(self.store), Path(self.data_path)
        get_backend(self.backend)  # ConfigError naming the choices
        get_codec(self.codec)
        if self.workers < 0:
            raise ConfigError(f"--workers must be >= 0, got {self.workers}")
        self.workers = min(self.workers, os.cpu_count() or 1)
        if self.frames_per_shard is not None and self.frames_per_shard <= 0:
            raise ConfigError(f"--frames-per-shard must be > 0, got {self.frames_per_shard}")
        names = [check_task_name(s.task) for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"task(s) named more than once: {', '.join(dupes)}; name each task once")


class ProgressSink(Protocol):
    def begin(self, total_files: int, total_seconds: float) -> None: ...
    def partition(self, task: str, partition: str) -> None: ...
    def advance(self, files: int, seconds: float, resumed: bool = False) -> None: ...
    def end(self) -> None: ...


class NoProgress:
    """A ProgressSink that shows nothing."""

    def begin(self, total_files, total_seconds):
        pass

    def partition(self, task, partition):
        pass

    def advance(self, files, seconds, resumed=False):
        pass

    def end(self):
        pass


@dataclass
class PartitionResult:
    task: str
    partition: str
    status: str  # extracted | resumed | up to date
    files: int
    seconds: float
    skipped: list[dict]
    converted: int


@dataclass
class ExtractReport:
    store: Path
    results: list[PartitionResult]
    elapsed: float
    notices: list[str] = field(default_factory=list)  # what was replaced or removed, warnings

    @property
    def work_seconds(self) -> float:
        return sum(r.seconds for r in self.results if r.status != "up to date")
