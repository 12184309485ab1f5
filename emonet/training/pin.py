"""The data a run was started on, pinned in its folder, and checked whenever the run reads it.

At the start of a run the trainer records, in ``RUN/data.json``, the feature hash of the
stores and, for every task, its label map and each partition's identity: the sha256 of its
per-utterance index and a digest of its block checksums, both kept by the store since the
partition was written. ``--resume`` and the trainer itself (before every epoch, after every
validation and before the final scoring) compare the stores with that record; a store
re-extracted under a running or resumable run stops it with one line naming the task and
partition, so a run is never continued or scored on other data than it started with.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from emonet.errors import StoreError
from emonet.store.reader import open_store
from emonet.training import distributed as dd
from emonet.utils.fs import atomic_write_json, filesystem_errors, read_json

PINS = "data.json"
VERSION = 1


class DataChangedError(StoreError):
    """A store holds other features or partitions than those the run started with."""


def _partition_pin(meta: dict) -> dict:
    crcs = json.dumps(meta.get("block_crc32"), sort_keys=True).encode()
    return {
        "files": meta.get("files"),
        "index_sha256": meta.get("index_sha256"),
        "blocks_sha256": hashlib.sha256(crcs).hexdigest(),
    }


def current_pins(stores: list, task_stores: dict) -> dict:
    """What the stores hold now: the feature hash and, per task, the store, label map and
    partitions (read fresh from disk: the metadata of an open store is not trusted)."""
    fresh = {str(s.path): open_store(s.path) for s in stores}
    tasks = {}
    for task, path in task_stores.items():
        store = fresh[str(path)]
        if task not in store.tasks:
            tasks[task] = {"store": str(path), "classes": None, "partitions": {}}
            continue
        parts = {p: _partition_pin(store.partition(task, p).meta) for p in store.partitions(task)}
        tasks[task] = {"store": str(path), "classes": store.classes(task), "partitions": parts}
    return {"version": VERSION, "stores": {p: s.feature_hash for p, s in fresh.items()}, "tasks": tasks}


def write_pins(run: Path, pins: dict) -> None:
    """Record the run's data (atomically) in ``RUN/data.json``."""
    atomic_write_json(Path(run) / PINS, pins)


def read_pins(run: Path) -> dict | None:
    """The run's recorded data, or None for a run folder that has none (made before pins)."""
    path = Path(run) / PINS
    if not path.is_file():
        return None
    with filesystem_errors(path):
        try:
            return read_json(path)
        except ValueError:
            raise StoreError(f"{path}: unreadable (not JSON); the run's data record is damaged") from None


def difference(pinned: dict, now: dict) -> tuple[str, str] | None:
    """(where, what changed) for the first difference between the record and the stores, or None."""
    for path, feature_hash in pinned.get("stores", {}).items():
        if now["stores"].get(path) != feature_hash:
            return f"store {path}", "holds features of another feature config (re-extracted with other options)"
    for task, was in pinned.get("tasks", {}).items():
        is_ = now["tasks"].get(task)
        if is_ is None or is_["classes"] is None:
            return f"task {task!r}", f"is no longer in {was.get('store')}"
        if is_["classes"] != was["classes"]:
            return f"task {task!r} in {is_['store']}", f"has another label map ({was['classes']} -> {is_['classes']})"
        for part, pin in was["partitions"].items():
            if is_["partitions"].get(part) != pin:
                state = "was removed" if part not in is_["partitions"] else "was re-extracted (other content)"
                return f"task {task!r}, partition {part} in {is_['store']}", state
        extra = sorted(set(is_["partitions"]) - set(was["partitions"]))
        if extra:
            return f"task {task!r} in {is_['store']}", f"gained partition(s) {', '.join(extra)}"
    return None


def check_unchanged(
    pinned: dict, stores: list, tasks: dict, run: Path, world: int = 1, device=None, resuming: bool = False
) -> None:
    """Stop with one line when the stores no longer hold the pinned data. Under DDP every rank
    checks and stops together (no rank is left waiting at a collective)."""
    diff = difference(pinned, current_pins(stores, {t: d.store.path for t, d in tasks.items()}))
    if world > 1:
        flag = dd.all_reduce_sum(torch.tensor([0.0 if diff is None else 1.0], device=device), world)
        if diff is None and float(flag[0]) > 0:
            diff = ("a store", "changed (seen by another rank)")
    if diff is None:
        return
    where, what = diff
    if resuming:
        raise DataChangedError(
            f"--resume {run}: {where} {what} since the run started; a run continues only on its own data: "
            "restore the store as it was, or start a new run on the new data (emonet train -s ... -ebp ...)"
        )
    raise DataChangedError(
        f"{where} {what} while this run was reading it; the run stopped before using it (finished epochs are kept, "
        f"nothing was scored on the new data): restore the store as it was and continue with "
        f"emonet train --resume {run}, or start a new run on the new data"
    )
