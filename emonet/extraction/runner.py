"""Runs an extraction: validate everything, then, holding the store's writer lock, write
each partition that is missing, resuming partitions a killed run left in staging.
Re-running the same command does no work; a different feature config or csv is refused
unless ``overwrite``.

The steps, in order: :func:`plan_all` (read and check every csv row and audio header,
nothing written), take the :class:`~emonet.store.lock.StoreLock`, check the store
(:mod:`emonet.extraction.store_state`), remove what ``overwrite`` replaces, write the
root record, then :func:`~emonet.extraction.writing.write_partitions`."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from emonet.data.partitions import PARTITIONS
from emonet.errors import InputError
from emonet.extraction.blocks import BlockExecutor
from emonet.extraction.options import (
    ExtractOptions,
    ExtractReport,
    NoProgress,
    PartitionResult,
    ProgressSink,
)
from emonet.extraction.plan import TaskPlan, plan_task
from emonet.extraction.shared import remove_shared
from emonet.extraction.store_state import (
    check_store,
    partition_work,
    refuse_foreign_folder,
    remove_stale,
    write_root,
)
from emonet.extraction.writing import FileFailed, write_partitions
from emonet.store import metadata
from emonet.store.backends import Backend, get_backend
from emonet.store.codec import get_codec
from emonet.store.lock import StoreLock
from emonet.store.staging import BlockLayout
from emonet.utils.fs import filesystem_errors

__all__ = ["ExtractOptions", "ExtractReport", "PartitionResult", "ProgressSink", "run_extract"]


def _print_notice(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_extract(
    opts: ExtractOptions,
    progress: ProgressSink | None = None,
    notify: Callable[[str], None] | None = None,
) -> ExtractReport:
    """Extracts the csv partitions of ``opts.sources`` into the store ``opts.store``.

    Args:
        opts: what to extract, where, and how (see :class:`ExtractOptions`).
        progress: receives progress (files and seconds done); default: none shown.
        notify: receives one-line notices: waiting for another writer, what
            ``overwrite`` replaces or removes, files listed in two partitions. Default:
            printed to stderr.

    Returns:
        An :class:`ExtractReport`: per partition, whether it was extracted, resumed or
        already up to date, with its skipped rows.

    Raises:
        EmoNetError subclasses for anything the user can fix (InputError for a bad row or
        file, StoreError for a conflicting store, FilesystemError when the filesystem
        refuses). KeyboardInterrupt (Ctrl-C) unwinds: the pool is shut and the lock
        released. Nothing already in the store is lost; a re-run resumes.
    """
    progress = progress or NoProgress()
    notices: list[str] = []

    def note(message: str) -> None:
        notices.append(message)
        (notify or _print_notice)(message)

    t0 = time.perf_counter()
    if not opts.data_path.is_dir():
        raise InputError(f"{opts.data_path}: data path not found; pass the folder the csv file paths are relative to")
    backend = get_backend(opts.backend)
    with filesystem_errors(opts.store):
        layout = backend.layout(opts.frames_per_shard, get_codec(opts.codec))  # imports the backend before the fork
        refuse_foreign_folder(opts.store)
        executor = BlockExecutor(opts.features, opts.device, opts.workers)  # checks the device
        try:
            plans = plan_all(opts, executor, note)
            with StoreLock(opts.store, on_wait=note):
                results = _extract_locked(opts, backend, layout, plans, executor, progress, note)
        finally:
            executor.close()
    order = [(p.task, part) for p in plans for part in PARTITIONS]
    results.sort(key=lambda r: order.index((r.task, r.partition)))
    return ExtractReport(store=opts.store, results=results, elapsed=time.perf_counter() - t0, notices=notices)


def plan_all(opts: ExtractOptions, executor: BlockExecutor, note: Callable[[str], None]) -> list[TaskPlan]:
    """Step 1: every task's plan; the first bad row raises unless ``skip_bad``."""
    plans, problems = [], []
    for src in opts.sources:
        plan, found = plan_task(src, opts.data_path, opts.features, probe_many=executor.probe_many)
        plans.append(plan)
        problems.extend(found)
        for warning in plan.warnings:
            note(warning)
    if problems and not opts.skip_bad:
        more = f" ({len(problems) - 1} more bad row(s); --skip-bad skips them)" if len(problems) > 1 else ""
        raise InputError(str(problems[0]) + more)
    return plans


def _extract_locked(
    opts: ExtractOptions,
    backend: Backend,
    layout: BlockLayout,
    plans: list[TaskPlan],
    executor: BlockExecutor,
    progress: ProgressSink,
    note: Callable[[str], None],
) -> list[PartitionResult]:
    """Steps 2-4 under the writer's lock. The store is read afresh here: another writer
    may have changed it while this one planned or waited. With ``skip_bad``, a file that
    fails while decoding is dropped from its partition's plan and the writing resumes."""
    done: list[PartitionResult] = []  # written by this run, across retries
    while True:
        state = check_store(opts, backend)
        todo, up_to_date, notices = partition_work(opts, backend, plans, state)
        for message in notices:
            note(message)
        remove_stale(opts, backend, plans, state, note)
        if not state.exists or state.replace_all:
            write_root(opts, backend)
        executor.limit(sum(len(layout.block_bounds(w.plan.content)) - 1 for w in todo))
        progress.begin(sum(len(w.plan.content) for w in todo), sum(float(w.plan.content.seconds.sum()) for w in todo))
        try:
            write_partitions(opts, backend, layout, executor, todo, progress, done)
            remove_shared(opts.store)
        except FileFailed as failed:
            if not opts.skip_bad:
                raise failed.error from None
            _drop_file(plans, failed)
            continue
        finally:
            progress.end()
            _remove_empty_staging(opts)
        keys = {(r.task, r.partition) for r in done}
        return done + [r for r in up_to_date if (r.task, r.partition) not in keys]


def _drop_file(plans: list[TaskPlan], failed: FileFailed) -> None:
    task, name = failed.work.key
    plan = next(p for p in plans if p.task == task)
    plan.partitions[name] = plan.partitions[name].without(failed.index, failed.error)
    if name == "train" and len(plan.partitions[name].content) == 0:
        raise InputError(f"{failed.error}; no usable training file is left for task {task!r}")


def _remove_empty_staging(opts: ExtractOptions) -> None:
    staging = opts.store / metadata.STAGING
    if staging.is_dir() and not any(staging.iterdir()):
        staging.rmdir()
