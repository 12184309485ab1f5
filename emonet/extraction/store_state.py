"""What an extraction finds in the store before it writes: whether the store exists and
matches the asked format and feature config, which partitions are up to date, which must
be written, and (with ``overwrite``) what must be removed first. Only files the store
wrote are ever removed, and each removal is announced."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emonet.data.partitions import PARTITIONS
from emonet.errors import StoreCorruptError, StoreError
from emonet.extraction.options import ExtractOptions, PartitionResult
from emonet.extraction.plan import PartitionPlan, TaskPlan
from emonet.store import integrity, metadata
from emonet.store.backends import BACKENDS, Backend
from emonet.store.reader import Partition
from emonet.store.verify import check_partition
from emonet.utils.fs import remove_tree


@dataclass(frozen=True)
class StoreState:
    exists: bool  # an emonet store is there
    replace_all: bool  # its format, codec or feature config differs, and overwrite was asked


@dataclass
class PartitionWork:
    """A partition to write: its task, name, plan and content id."""

    task: TaskPlan
    name: str
    plan: PartitionPlan
    content_id: str

    @property
    def key(self) -> tuple[str, str]:
        return self.task.task, self.name

    def result(self, status: str) -> PartitionResult:
        c = self.plan.content
        return PartitionResult(
            self.task.task, self.name, status, len(c), float(c.seconds.sum()), self.plan.skipped, self.plan.converted
        )


def refuse_foreign_folder(root: Path) -> None:
    """A path that is a file, or a non-empty folder that is no store, is refused (before
    anything is written there)."""
    if root.exists() and not root.is_dir():
        raise StoreError(f"{root}: exists and is not a folder; choose another --store path")
    if root.is_dir() and metadata.detect_backend(root) is None:
        ours = {metadata.STAGING, metadata.LOCK}
        if any(p.name not in ours for p in root.iterdir()):
            raise StoreError(
                f"{root}: folder exists, is not empty and is not an emonet store; choose another --store path"
            )


def check_store(opts: ExtractOptions, backend: Backend) -> StoreState:
    """The store's state against the asked format, codec and feature config."""
    root = opts.store
    refuse_foreign_folder(root)
    found = metadata.detect_backend(root) if root.is_dir() else None
    if found is None:
        return StoreState(False, False)
    if found.name != backend.name:
        if not opts.overwrite:
            raise StoreError(
                f"{root}: is a {found.name} store, but --format {backend.name} was asked; "
                f"pass --format {found.name}, another --store, or --overwrite to replace it"
            )
        return StoreState(True, True)
    meta = backend.read_meta(root, "store")
    if (codec := metadata.recorded_codec(meta)) != opts.codec:  # one setting per store: what it records
        if not opts.overwrite:
            raise StoreError(
                f"{root}: store was written with --codec {codec}, but --codec {opts.codec} was asked; "
                f"pass --codec {codec}, another --store, or --overwrite to re-extract everything with {opts.codec}"
            )
        return StoreState(True, True)
    if meta["feature_hash"] != opts.features.fingerprint():
        if not opts.overwrite:
            old, new = meta["feature_config"], opts.features.to_dict()
            diff = ", ".join(f"{k} {old.get(k)} -> {new[k]}" for k in new if old.get(k) != new[k])
            raise StoreError(
                f"{root}: store was extracted with another feature config ({diff}); "
                "use another --store or --overwrite to re-extract everything"
            )
        return StoreState(True, True)
    return StoreState(True, False)


def partition_work(
    opts: ExtractOptions, backend: Backend, plans: list[TaskPlan], state: StoreState
) -> tuple[list[PartitionWork], list[PartitionResult], list[str]]:
    """(partitions to write, partitions up to date, notices of what will be replaced)."""
    root = opts.store
    todo, up_to_date, notices = [], [], []
    for task in plans:
        task_meta = _task_meta(opts, backend, task, state, notices)
        if task_meta is not None and task_meta["classes"] != task.classes:
            if not opts.overwrite:
                raise StoreError(
                    f"{root / task.task}: task {task.task!r} is in the store with classes {task_meta['classes']}, "
                    f"but the train csv gives {task.classes}; use --overwrite to re-extract it"
                )
            task_meta = None  # removed before writing (see remove_stale)
        for part, plan in task.partitions.items():
            layout_key = (backend.name, opts.frames_per_shard)
            content_id = plan.content.fingerprint(plan.csv.sha256, opts.features.fingerprint(), *layout_key)
            work = PartitionWork(task, part, plan, content_id)
            if task_meta is None:
                todo.append(work)
                continue
            replace = _replace_reason(opts, backend, work)
            if replace is None:
                up_to_date.append(work.result("up to date"))
                continue
            if replace:
                notices.append(f"replacing {root / task.task / part}: {replace}")
            todo.append(work)
    return todo, up_to_date, notices


def _task_meta(
    opts: ExtractOptions, backend: Backend, task: TaskPlan, state: StoreState, notices: list[str]
) -> dict | None:
    """The task's record in the store (None if absent). With ``overwrite``, a damaged one
    is rewritten from the plan (by :func:`remove_stale`), its partitions checked as usual."""
    if not state.exists or state.replace_all:
        return None
    try:
        return backend.read_meta(opts.store / task.task, "task")
    except StoreCorruptError as exc:
        if not opts.overwrite:
            raise
        notices.append(f"rewriting the record of task {task.task!r}: damaged ({_problem(exc)})")
        return {"task": task.task, "classes": task.classes}


def _replace_reason(opts: ExtractOptions, backend: Backend, work: PartitionWork) -> str | None:
    """Why the existing partition of ``work`` is written again ("" if it is absent or
    incomplete), or None if it is up to date. With ``overwrite``, a partition that is
    up to date is checked as `emonet verify` checks it, and replaced if damaged."""
    path = opts.store / work.task.task / work.name
    try:
        existing = backend.read_meta(path, "partition")
    except StoreCorruptError as exc:
        if not opts.overwrite:
            raise
        return f"damaged ({_problem(exc)})"
    if not existing or not existing.get("complete"):
        return ""
    if existing.get("content_id") != work.content_id:
        if not opts.overwrite:
            raise StoreError(
                f"{path}: already extracted from a different {existing.get('csv', {}).get('name', 'csv')} "
                "or options; use --overwrite to replace it"
            )
        return "extracted from another csv or options"
    if not opts.overwrite:
        return None

    task, name = work.task.task, work.name
    check = check_partition(lambda: Partition(path, backend, task, name, work.task.classes, existing), task, name)
    return None if check.ok else f"damaged ({_problem(check.problems[0])}{' ...' if len(check.problems) > 1 else ''})"


def _problem(problem) -> str:
    """A damage report without its advice (the notice says what is done about it)."""
    return str(problem).removesuffix(f"; {integrity.FIX}")


def write_root(opts: ExtractOptions, backend: Backend) -> None:
    """Writes the root record for ``opts`` (replacing one of another codec or feature config), then
    removes another format's root record."""
    metadata.write_root(opts.store, backend, opts.features.to_dict(), opts.features.fingerprint(), opts.codec)
    for other in BACKENDS.values():
        if other.meta_file_name("store") != backend.meta_file_name("store"):
            (opts.store / other.meta_file_name("store")).unlink(missing_ok=True)


def remove_task(root: Path, task: str, backend: Backend, reason: str, notify: Callable[[str], None]) -> None:
    """Removes what the store wrote of ``task`` (its partitions and record); files that
    someone else put in its folder stay, and are named."""
    folder = root / task
    parts = [p for p in PARTITIONS if backend.read_meta(folder / p, "partition") is not None]
    notify(f"removing {folder} ({', '.join(parts) or 'no partitions'}): {reason}")
    for p in parts:
        remove_tree(folder / p)
    record = folder / backend.meta_file_name("task")
    if record.is_file():
        record.unlink()
    left = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if left:
        notify(f"kept {len(left)} file(s) in {folder} that the store did not write: {', '.join(left[:5])}")
    elif folder.is_dir():
        folder.rmdir()


def remove_stale(
    opts: ExtractOptions, backend: Backend, plans: list[TaskPlan], state: StoreState, notify: Callable[[str], None]
) -> None:
    """With ``overwrite``: removes the tasks of a store of another format, codec or feature config,
    and tasks whose classes changed. The root record stays until the caller writes the new
    one (:func:`write_root`), so an interrupted removal never leaves a store that is not
    recognised as one."""
    root = opts.store
    if state.replace_all:
        old = metadata.detect_backend(root) or backend
        for task in metadata.task_dirs(root, old):
            remove_task(root, task, old, "extracted with another format, codec or feature config", notify)
        return
    if not state.exists:
        return
    for task in plans:
        try:
            task_meta = backend.read_meta(root / task.task, "task")
        except StoreCorruptError:  # with overwrite (else planning raised): rewritten, as announced
            (root / task.task / backend.meta_file_name("task")).unlink()
            backend.write_meta(root / task.task, "task", {"task": task.task, "classes": task.classes})
            continue
        if task_meta is not None and task_meta["classes"] != task.classes:
            remove_task(
                root,
                task.task,
                backend,
                f"classes {task_meta['classes']} -> {task.classes} (train csv changed)",
                notify,
            )
