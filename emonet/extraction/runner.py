"""Runs an extraction: validate everything, then write each partition that is missing,
resuming partitions a killed run left in staging. Re-running the same command does no
work; a different feature config or csv is refused unless ``overwrite``."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from emonet.data.features import FeatureConfig
from emonet.data.partitions import PARTITIONS, TaskSources
from emonet.errors import EmoNetError, StoreError
from emonet.extraction.blocks import BlockExecutor, BlockFailure
from emonet.extraction.plan import PartitionPlan, TaskPlan, label_counts, plan_task
from emonet.store import layout
from emonet.store.writer import StagedPartition
from emonet.utils.fs import remove_tree


@dataclass
class ExtractOptions:
    """Everything one ``emonet extract`` run needs."""

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

    def __post_init__(self) -> None:
        self.store, self.data_path = Path(self.store), Path(self.data_path)
        if self.backend not in layout.BACKENDS:
            raise EmoNetError(f"unknown --format {self.backend!r}; choose one of: {', '.join(layout.BACKENDS)}")
        if self.workers < 0:
            raise EmoNetError(f"--workers must be >= 0, got {self.workers}")
        names = [s.task for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise EmoNetError(f"task(s) named more than once: {', '.join(dupes)}; name each task once")


class ProgressSink(Protocol):
    def begin(self, total_files: int, total_seconds: float) -> None: ...
    def partition(self, task: str, partition: str) -> None: ...
    def advance(self, files: int, seconds: float, resumed: bool = False) -> None: ...
    def end(self) -> None: ...


class _NoProgress:
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

    @property
    def work_seconds(self) -> float:
        return sum(r.seconds for r in self.results if r.status != "up to date")


def _check_store(opts: ExtractOptions) -> tuple[bool, bool]:
    """(store exists as an emonet store, feature config differs and must be replaced)."""
    root = opts.store
    if root.exists() and not root.is_dir():
        raise StoreError(f"{root}: exists and is not a folder; choose another --store path")
    backend = layout.detect_backend(root) if root.is_dir() else None
    if backend is None:
        if root.is_dir() and any(p.name != layout.STAGING for p in root.iterdir()):
            raise StoreError(
                f"{root}: folder exists, is not empty and is not an emonet store; choose another --store path"
            )
        return False, False
    if backend != opts.backend:
        if not opts.overwrite:
            raise StoreError(
                f"{root}: is a {backend} store, but --format {opts.backend} was asked; pass --format {backend}, another --store, or --overwrite to replace it"
            )
        return True, True
    meta = layout.MetaIO(backend).read(root, "store")
    if meta["feature_hash"] != opts.features.fingerprint():
        if not opts.overwrite:
            old, new = meta["feature_config"], opts.features.to_dict()
            diff = ", ".join(f"{k} {old.get(k)} -> {new[k]}" for k in new if old.get(k) != new[k])
            raise StoreError(
                f"{root}: store was extracted with another feature config ({diff}); use another --store or --overwrite to re-extract everything"
            )
        return True, True
    return True, False


def _layout(opts: ExtractOptions):
    if opts.backend == "zarr":
        from emonet.store.zarr_backend import FRAMES_PER_CHUNK, FRAMES_PER_SHARD, ZarrLayout

        fps = opts.frames_per_shard or FRAMES_PER_SHARD
        return ZarrLayout(frames_per_shard=fps, frames_per_chunk=min(FRAMES_PER_CHUNK, fps))
    from emonet.store.wds_backend import FRAMES_PER_TAR, WdsLayout

    return WdsLayout(frames_per_tar=opts.frames_per_shard or FRAMES_PER_TAR)


def _partition_meta(plan: PartitionPlan, classes: list[str], content_id: str, stats) -> dict:
    c = plan.content
    meta = {
        "complete": True,
        "task": c.task,
        "partition": c.partition,
        "content_id": content_id,
        "csv": {"name": plan.csv.path.name, "sha256": plan.csv.sha256},
        "labelled": c.labelled,
        "files": len(c),
        "frames": c.total_frames,
        "n_mels": c.n_mels,
        "seconds": round(float(c.seconds.sum()), 6),
        "label_counts": label_counts(plan, classes),
        "converted": plan.converted,
        "skipped": plan.skipped,
    }
    if stats is not None:
        meta["mel_mean"], meta["mel_std"] = stats
    return meta


def run_extract(opts: ExtractOptions, progress: ProgressSink | None = None) -> ExtractReport:
    progress = progress or _NoProgress()
    t0 = time.perf_counter()
    if not opts.data_path.is_dir():
        raise EmoNetError(f"{opts.data_path}: data path not found; pass the folder the csv file paths are relative to")
    exists, replace_all = _check_store(opts)
    lay = _layout(opts)  # imports the backend (zarr: 0.35 s) before the workers fork, so they inherit it
    executor = BlockExecutor(opts.features, opts.device, opts.workers)  # checks the device; workers start on first use
    try:
        return _run(opts, lay, progress, executor, exists, replace_all, t0)
    finally:
        executor.close()


def _run(
    opts: ExtractOptions,
    lay,
    progress: ProgressSink,
    executor: BlockExecutor,
    exists: bool,
    replace_all: bool,
    t0: float,
) -> ExtractReport:
    # 1. validate everything before writing anything
    plans: list[TaskPlan] = []
    problems = []
    for src in opts.sources:
        plan, probs = plan_task(src, opts.data_path, opts.features, probe_many=executor.probe_many)
        plans.append(plan)
        problems.extend(probs)
    if problems and not opts.skip_bad:
        more = f" ({len(problems) - 1} more bad row(s); --skip-bad skips them)" if len(problems) > 1 else ""
        raise EmoNetError(str(problems[0]) + more)

    meta_io = layout.MetaIO(opts.backend)
    root = opts.store
    todo: list[tuple[TaskPlan, str, PartitionPlan, str]] = []
    results: list[PartitionResult] = []
    for tp in plans:
        task_meta = meta_io.read(root / tp.task, "task") if exists and not replace_all else None
        if task_meta is not None and task_meta["classes"] != tp.classes and not opts.overwrite:
            raise StoreError(
                f"{root / tp.task}: task {tp.task!r} is in the store with classes {task_meta['classes']}, but the train csv gives {tp.classes}; use --overwrite to re-extract it"
            )
        for part, pp in tp.partitions.items():
            layout_key = (opts.backend, opts.frames_per_shard)
            content_id = pp.content.fingerprint(pp.csv.sha256, opts.features.fingerprint(), *layout_key)
            existing = meta_io.read(root / tp.task / part, "partition") if task_meta is not None else None
            if existing and existing.get("complete"):
                if existing.get("content_id") == content_id and task_meta["classes"] == tp.classes:
                    results.append(
                        PartitionResult(
                            tp.task,
                            part,
                            "up to date",
                            len(pp.content),
                            float(pp.content.seconds.sum()),
                            pp.skipped,
                            pp.converted,
                        )
                    )
                    continue
                if not opts.overwrite:
                    raise StoreError(
                        f"{root / tp.task / part}: already extracted from a different {existing.get('csv', {}).get('name', 'csv')} or options; use --overwrite to replace it"
                    )
            todo.append((tp, part, pp, content_id))

    # 2. create the store and task folders (each appears atomically)
    staging = root / layout.STAGING
    if todo or not exists or replace_all:
        if replace_all:
            for child in list(root.iterdir()):
                if child.name != layout.STAGING:
                    remove_tree(child) if child.is_dir() else child.unlink()
        root.mkdir(parents=True, exist_ok=True)
        if not exists or replace_all:
            layout.write_root(root, opts.backend, opts.features.to_dict(), opts.features.fingerprint())
    for tp in plans:
        task_meta = meta_io.read(root / tp.task, "task")
        if task_meta is None or task_meta["classes"] != tp.classes:
            tmp = staging / f"{tp.task}.task"
            remove_tree(tmp)
            meta_io.write(tmp, "task", {"task": tp.task, "classes": tp.classes})
            if (root / tp.task).exists():
                remove_tree(root / tp.task)  # only reached with --overwrite (checked above)
            os.replace(tmp, root / tp.task)

    # 3. write what is missing: every block of every partition, in parallel, in order
    progress.begin(
        sum(len(pp.content) for *_x, pp, _c in todo),
        sum(float(pp.content.seconds.sum()) for *_x, pp, _c in todo),
    )
    try:
        results.extend(_write_partitions(opts, lay, executor, todo, progress))
    finally:
        progress.end()
    if staging.is_dir() and not any(staging.iterdir()):
        staging.rmdir()
    order = [(tp.task, p) for tp in plans for p in PARTITIONS]
    results.sort(key=lambda r: order.index((r.task, r.partition)))
    return ExtractReport(store=root, results=results, elapsed=time.perf_counter() - t0)


def _write_partitions(opts: ExtractOptions, lay, executor: BlockExecutor, todo, progress) -> list[PartitionResult]:
    """Streams the blocks of all partitions through the executor. A partition's staging
    folder is prepared only when its first block is due, so preparing overlaps the
    workers' computing; a partition is committed as soon as its last block is recorded."""
    results: list[PartitionResult] = []
    by_stage: dict = {}

    def finish(entry) -> None:
        tp, part, pp, content_id, sp, resumed = entry
        progress.partition(tp.task, part)
        _commit(opts, tp, part, pp, content_id, sp)
        results.append(
            PartitionResult(
                tp.task,
                part,
                "resumed" if resumed else "extracted",
                len(pp.content),
                float(pp.content.seconds.sum()),
                pp.skipped,
                pp.converted,
            )
        )

    def jobs():
        for tp, part, pp, content_id in todo:
            sp = StagedPartition(opts.store / layout.STAGING / tp.task / part, pp.content, lay, tp.classes)
            entry = (tp, part, pp, content_id, sp, sp.blocks_done > 0)
            pending = sp.prepare()
            for k in range(sp.blocks_done):
                progress.advance(*sp.finished_in_block(k), resumed=True)
            if sp.done:  # nothing left to write (empty, or finished before a crash)
                finish(entry)
                continue
            by_stage[sp.dir] = entry
            yield from (sp.job(k) for k in pending)

    for job, res in executor.run(jobs()):
        entry = by_stage[job.stage]
        tp, part, pp, _cid, sp, _resumed = entry
        if isinstance(res, BlockFailure):
            raise _failure_error(pp, res)
        progress.partition(tp.task, part)
        sp.record(job.k, res)
        progress.advance(*sp.finished_in_block(job.k))
        if sp.done:
            finish(entry)
    return results


def _commit(
    opts: ExtractOptions, tp: TaskPlan, part: str, pp: PartitionPlan, content_id: str, sp: StagedPartition
) -> None:
    """Writes the partition's metadata and renames it into place: from now on it exists."""
    root = opts.store
    stats = sp.mel_stats() if part == "train" else None
    meta = _partition_meta(pp, tp.classes, content_id, stats)
    (sp.dir / "progress.json").unlink()
    layout.MetaIO(opts.backend).write(sp.dir, "partition", meta)
    target = root / tp.task / part
    if target.exists():
        remove_tree(target)  # only with --overwrite: checked during planning
    os.replace(sp.dir, target)
    parent = sp.dir.parent
    if parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()


def _failure_error(pp: PartitionPlan, f: BlockFailure) -> EmoNetError:
    key = pp.content.files[f.index]
    line = next((r.line for r in pp.csv.rows if r.file == key), "?")
    if f.kind == "frames":
        return EmoNetError(
            f"{pp.csv.path} row {line}: {f.path}: {f.reason}; the file is truncated or corrupt: fix or remove it, then re-run (finished work is kept)"
        )
    return EmoNetError(
        f"{pp.csv.path} row {line}: {f.path}: {f.reason}; fix or remove the file, then re-run (finished work is kept)"
    )
