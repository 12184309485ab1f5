"""Reads every block of every partition of a store and checks it against its checksum,
without stopping at the first damage: the report says, per partition, what is wrong."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emonet.errors import StoreCorruptError
from emonet.store.reader import Partition, open_store


@dataclass
class PartitionCheck:
    """The outcome for one partition: blocks read and the problems found (one line each)."""

    task: str
    partition: str
    blocks: int = 0
    files: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class VerifyReport:
    path: Path
    partitions: list[PartitionCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # problems outside any partition

    @property
    def ok(self) -> bool:
        return not self.problems and all(p.ok for p in self.partitions)

    @property
    def damaged(self) -> list[PartitionCheck]:
        return [p for p in self.partitions if not p.ok]


def check_partition(open_partition: Callable[[], Partition], task: str, name: str) -> PartitionCheck:
    """Opens a partition (``open_partition``), reads every block and checks it."""
    check = PartitionCheck(task, name)
    try:
        part = open_partition()
    except StoreCorruptError as exc:
        check.problems.append(str(exc))
        return check
    check.files = len(part)
    for k in range(part.n_blocks):
        try:
            frames = part.read_block(k)
        except StoreCorruptError as exc:
            check.problems.append(str(exc))
            continue
        expected = int(part.block_bounds[k + 1] - part.block_bounds[k])
        if frames.shape[0] != expected:
            check.problems.append(f"{part.path}: block {k} holds {frames.shape[0]} frames, expected {expected}")
        check.blocks += 1
    return check


def _check_partition(store, task: str, name: str) -> PartitionCheck:
    return check_partition(lambda: store.partition(task, name), task, name)


def verify_store(path: Path | str) -> VerifyReport:
    """Checks the whole store at ``path``.

    Args:
        path: the store's folder.

    Returns:
        A :class:`VerifyReport`: one :class:`PartitionCheck` per partition (blocks read,
        problems found) and store-level problems (unreadable task records). Raises
        StoreError only if ``path`` is not a store at all.
    """
    store = open_store(path, verify=True)
    report = VerifyReport(Path(path))
    for task in store.tasks:
        try:
            names = store.partitions(task)
        except StoreCorruptError as exc:
            report.problems.append(str(exc))
            continue
        report.partitions.extend(_check_partition(store, task, name) for name in names)
    return report
