"""Writing partitions: every block of every partition through the executor, in order,
and each partition committed (metadata, checksums, atomic rename) once its last block is
on disk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from emonet.errors import EmoNetError, InputError
from emonet.extraction.blocks import BlockExecutor, BlockFailure
from emonet.extraction.options import ExtractOptions, PartitionResult, ProgressSink
from emonet.extraction.plan import PartitionPlan, label_counts
from emonet.extraction.shared import SharedFeatures
from emonet.extraction.store_state import PartitionWork
from emonet.store import integrity, metadata
from emonet.store.backends import Backend
from emonet.store.staging import PROGRESS, BlockJob, BlockLayout, StagedPartition
from emonet.utils.fs import remove_tree


class FileFailed(Exception):
    """A file failed while its block was written; with ``--skip-bad`` the partition is
    planned again without it."""

    def __init__(self, work: PartitionWork, error: InputError, index: int):
        super().__init__(str(error))
        self.work, self.error, self.index = work, error, index


@dataclass
class _Staged:
    work: PartitionWork
    staged: StagedPartition
    resumed: bool


def write_partitions(
    opts: ExtractOptions,
    backend: Backend,
    layout: BlockLayout,
    executor: BlockExecutor,
    todo: list[PartitionWork],
    progress: ProgressSink,
    results: list[PartitionResult],
) -> None:
    """Streams the blocks of all partitions in ``todo`` through the executor. A
    partition's staging folder is prepared only when its first block is due, so preparing
    overlaps the workers' computing; a partition is committed as soon as its last block is
    recorded (and appended to ``results``). A file that fails raises :class:`FileFailed`."""
    by_stage: dict = {}

    def finish(entry: _Staged) -> None:
        progress.partition(*entry.work.key)
        commit(opts, backend, entry.work, entry.staged)
        results.append(entry.work.result("resumed" if entry.resumed else "extracted"))

    def jobs() -> Iterator[BlockJob]:
        for work in todo:
            stage = opts.store / metadata.STAGING / work.task.task / work.name
            staged = StagedPartition(stage, work.plan.content, layout, work.task.classes)
            entry = _Staged(work, staged, staged.blocks_done > 0)
            pending = staged.prepare()
            for k in range(staged.blocks_done):
                progress.advance(*staged.finished_in_block(k), resumed=True)
            if staged.done:  # nothing left to write (empty, or finished before a crash)
                finish(entry)
                continue
            by_stage[staged.dir] = entry
            yield from (staged.job(k) for k in pending)

    shared = SharedFeatures.of(opts.store, opts.features.fingerprint(), [w.plan.content for w in todo])
    for job, res in executor.run(jobs(), shared):
        entry = by_stage[job.stage]
        if isinstance(res, BlockFailure):
            raise _failure(entry.work, res)
        progress.partition(*entry.work.key)
        entry.staged.record(job.k, res)
        progress.advance(*entry.staged.finished_in_block(job.k))
        if entry.staged.done:
            finish(entry)


def partition_meta(work: PartitionWork, staged: StagedPartition, index_sha256: str, codec: str) -> dict:
    """The partition's metadata record: content, csv, counts, statistics, the ``--codec``
    its blocks were written with, and checksums."""
    plan, c = work.plan, work.plan.content
    meta = {
        "complete": True,
        "task": c.task,
        "partition": c.partition,
        "content_id": work.content_id,
        "csv": {"name": plan.csv.path.name, "sha256": plan.csv.sha256},
        "labelled": c.labelled,
        "files": len(c),
        "frames": c.total_frames,
        "n_mels": c.n_mels,
        "seconds": round(float(c.seconds.sum()), 6),
        "label_counts": label_counts(plan, work.task.classes),
        "converted": plan.converted,
        "skipped": plan.skipped,
        "codec": codec,
        "block_crc32": staged.checksums,
        "index_sha256": index_sha256,
    }
    if plan.csv.origin:
        meta["origin"] = plan.csv.origin
    if work.name == "train":
        meta["mel_mean"], meta["mel_std"] = staged.mel_stats()
    return meta


def commit(opts: ExtractOptions, backend: Backend, work: PartitionWork, staged: StagedPartition) -> None:
    """Writes the partition's metadata and renames it into place: from now on it exists
    (and so does its task, whose record is written with its first partition)."""
    root = opts.store
    digest = integrity.index_digest(backend.open_partition(staged.dir))
    (staged.dir / PROGRESS).unlink()
    backend.write_meta(staged.dir, "partition", partition_meta(work, staged, digest, opts.codec))
    task_dir = root / work.task.task
    task_meta = backend.read_meta(task_dir, "task")
    if task_meta is None or task_meta["classes"] != work.task.classes:
        backend.write_meta(task_dir, "task", {"task": work.task.task, "classes": work.task.classes})
    target = task_dir / work.name
    if target.exists():
        remove_tree(target)  # only with --overwrite: checked and announced during planning
    os.replace(staged.dir, target)
    parent = staged.dir.parent
    if parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()


def _failure(work: PartitionWork, f: BlockFailure) -> Exception:
    plan: PartitionPlan = work.plan
    line = plan.row_of(f.index)
    where = f"{plan.csv.path} row {line if line is not None else '?'}: {f.path}"
    if f.kind == "memory":
        return EmoNetError(
            f"{where}: {f.reason}; use fewer --workers or free memory, then re-run (finished work is kept)"
        )
    if f.kind == "frames":
        reason = f"{f.reason}; the file is truncated or corrupt"
    else:
        reason = f.reason
    error = InputError(
        f"{where}: {reason}; fix or remove the file (or pass --skip-bad), then re-run (finished work is kept)",
        source=str(plan.csv.path),
        row=line,
        file=plan.content.files[f.index],
    )
    return FileFailed(work, error, f.index)
