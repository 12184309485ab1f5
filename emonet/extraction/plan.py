"""Validation before writing: every csv row is checked (path inside the data path, audio
readable and non-empty, label known to train) and every utterance's frame count is fixed
from its audio header. Nothing is written until the whole plan is valid."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emonet.data.audio import AudioReadError, probe_all, resampled_length
from emonet.data.features import FeatureConfig
from emonet.data.partitions import PARTITIONS, PartitionCsv, TaskSources, class_list, read_partition_csv
from emonet.errors import EmoNetError, InputError
from emonet.store.partition_plan import PartitionContent


@dataclass
class PartitionPlan:
    """A partition's checked csv and content (per-row objects are not kept: a plan is
    held for the whole run, so it stays small per row)."""

    csv: PartitionCsv
    content: PartitionContent
    skipped: list[dict] = field(default_factory=list)
    converted: int = 0  # files that needed downmixing or resampling


@dataclass
class TaskPlan:
    task: str
    classes: list[str]
    partitions: dict[str, PartitionPlan]


def _resolve(data_path: Path, key: str) -> Path | None:
    """The file's path, or None if it escapes the data path (lexically, so symlinked
    corpora inside the data path still work)."""
    base = os.path.normpath(os.path.abspath(data_path))
    full = os.path.normpath(os.path.join(base, key))
    if full != base and full.startswith(base + os.sep):
        return Path(full)
    return None


def plan_task(
    sources: TaskSources,
    data_path: Path,
    config: FeatureConfig,
    *,
    probe_many: Callable[[list[Path]], list] = probe_all,
) -> tuple[TaskPlan, list[InputError]]:
    """Reads and checks one task's csvs and audio headers (``probe_many`` reads a list of
    headers, possibly in parallel). Returns the plan (without the bad rows) and the row
    problems found."""
    csvs = {p: read_partition_csv(path, p) for p, path in sources.csvs.items()}
    problems: list[InputError] = []
    train = csvs["train"]
    classes = class_list(r.label for r in train.rows)
    if not classes:
        raise EmoNetError(
            f"{train.path}: no usable rows in the train csv; task {sources.task!r} needs labelled training data"
        )
    label_id = {c: i for i, c in enumerate(classes)}

    plans: dict[str, PartitionPlan] = {}
    for part in PARTITIONS:
        if part not in csvs:
            continue
        pc = csvs[part]
        part_problems = list(pc.problems)
        rows, paths = [], []
        for r in pc.rows:
            path = _resolve(data_path, r.file)
            if path is None:
                part_problems.append(
                    InputError(
                        f"{pc.path} row {r.line}: '{r.file}' points outside the data path {data_path}; use paths relative to the data path",
                        source=str(pc.path),
                        row=r.line,
                        file=r.file,
                    )
                )
                continue
            if r.label is not None and r.label not in label_id:
                part_problems.append(
                    InputError(
                        f"{pc.path} row {r.line}: label '{r.label}' does not occur in {train.path.name} (classes: {', '.join(classes)}); fix the label or add training examples",
                        source=str(pc.path),
                        row=r.line,
                        file=r.file,
                    )
                )
                continue
            rows.append(r)
            paths.append(path)
        results = probe_many(paths)
        good_rows, good_paths, infos = [], [], []
        for r, p, res in zip(rows, paths, results, strict=False):
            if isinstance(res, AudioReadError):
                part_problems.append(
                    InputError(
                        f"{pc.path} row {r.line}: {p}: {res}; fix or remove the file (or pass --skip-bad)",
                        source=str(pc.path),
                        row=r.line,
                        file=r.file,
                    )
                )
                continue
            good_rows.append(r)
            good_paths.append(p)
            infos.append(res)
        frames = [config.num_frames(resampled_length(i.num_samples, i.sample_rate, config.sample_rate)) for i in infos]
        content = PartitionContent(
            task=sources.task,
            partition=part,
            files=[r.file for r in good_rows],
            label_ids=[label_id[r.label] if r.label is not None else -1 for r in good_rows],
            frames=frames,
            seconds=[i.seconds for i in infos],
            n_mels=config.n_mels,
            labelled=pc.labelled,
            paths=[str(p) for p in good_paths],
        )
        part_problems.sort(key=lambda e: e.row or 0)
        plan = PartitionPlan(
            csv=pc,
            content=content,
            skipped=[e.as_record() for e in part_problems],
            converted=sum(1 for i in infos if i.channels != 1 or i.sample_rate != config.sample_rate),
        )
        plans[part] = plan
        problems.extend(part_problems)
    return TaskPlan(task=sources.task, classes=classes, partitions=plans), problems


def label_counts(plan: PartitionPlan, classes: list[str]) -> dict[str, int]:
    ids = plan.content.label_ids
    return {c: int(np.sum(ids == k)) for k, c in enumerate(classes) if np.any(ids == k)}
