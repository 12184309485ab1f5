"""Validation before writing: every csv row is checked (path inside the data path, audio
readable and non-empty, label known to train, a segment inside its file and at least one
frame long) and every utterance's frame count is fixed from its audio header. Nothing is
written until the whole plan is valid."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emonet.data.audio import AudioReadError, check_resampling, probe_all, resampled_length
from emonet.data.features import FeatureConfig
from emonet.data.partitions import PARTITIONS, PartitionCsv, TaskSources, class_list, normalise_key, read_partition_csv
from emonet.data.segments import sample_range, segment_problem
from emonet.errors import InputError
from emonet.store.content import PartitionContent


@dataclass
class PartitionPlan:
    """A partition's checked csv and content (per-row objects are not kept: a plan is
    held for the whole run, so it stays small per row)."""

    csv: PartitionCsv
    content: PartitionContent
    skipped: list[dict] = field(default_factory=list)
    converted: int = 0  # files that needed downmixing or resampling

    def without(self, index: int, problem: InputError) -> PartitionPlan:
        """This plan less utterance ``index`` (a file that failed while being decoded),
        with the problem recorded among the skipped rows."""
        c = self.content
        keep = [i for i in range(len(c)) if i != index]
        content = PartitionContent(
            task=c.task,
            partition=c.partition,
            files=[c.files[i] for i in keep],
            label_ids=c.label_ids[keep],
            frames=c.frames[keep],
            seconds=c.seconds[keep],
            n_mels=c.n_mels,
            labelled=c.labelled,
            paths=[c.paths[i] for i in keep],
            segments=[c.segments[i] for i in keep] if c.segments else [],
        )
        skipped = sorted([*self.skipped, problem.as_record()], key=lambda r: r["row"] or 0)
        return PartitionPlan(csv=self.csv, content=content, skipped=skipped, converted=self.converted)

    def row_of(self, index: int) -> int | None:
        """The csv line of utterance ``index``."""
        key = self.content.files[index]
        return next((r.line for r in self.csv.rows if r.key == key), None)


@dataclass
class TaskPlan:
    task: str
    classes: list[str]
    partitions: dict[str, PartitionPlan]
    warnings: list[str] = field(default_factory=list)


def _resolve(data_path: Path, key: str) -> Path | None:
    """The file's path, or None if it escapes the data path (lexically, so symlinked
    corpora inside the data path still work)."""
    base = os.path.normpath(os.path.abspath(data_path))
    full = os.path.normpath(os.path.join(base, key))
    if full != base and full.startswith(base + os.sep):
        return Path(full)
    return None


def _row_error(pc: PartitionCsv, r, message: str) -> InputError:
    return InputError(f"{pc.path} row {r.line}: {message}", source=str(pc.path), row=r.line, file=r.file)


def _check_rows(pc: PartitionCsv, data_path: Path, label_id: dict, train_name: str, problems: list) -> tuple:
    """(rows, paths) of the csv rows inside the data path with a known label."""
    rows, paths = [], []
    for r in pc.rows:
        path = _resolve(data_path, r.file)
        if path is None:
            problems.append(
                _row_error(
                    pc, r, f"'{r.file}' points outside the data path {data_path}; use paths relative to the data path"
                )
            )
        elif r.label is not None and r.label not in label_id:
            problems.append(
                _row_error(
                    pc,
                    r,
                    f"label '{r.label}' does not occur in {train_name} (classes: {', '.join(label_id)}); "
                    "fix the label or add training examples",
                )
            )
        else:
            rows.append(r)
            paths.append(path)
    return rows, paths


def _plan_partition(
    sources: TaskSources, pc: PartitionCsv, data_path: Path, config: FeatureConfig, label_id: dict, train_name: str,
    probe_many: Callable,
) -> PartitionPlan:  # fmt: skip
    problems = list(pc.problems)
    rows, paths = _check_rows(pc, data_path, label_id, train_name, problems)
    good_rows, good_paths, infos, samples = [], [], [], []
    for r, p, res in zip(rows, paths, probe_many(paths), strict=True):
        if not isinstance(res, AudioReadError):
            try:
                check_resampling(res.sample_rate, config.sample_rate)
            except AudioReadError as exc:
                res = exc
        if isinstance(res, AudioReadError):
            problems.append(_row_error(pc, r, f"{p}: {res}; fix or remove the file (or pass --skip-bad)"))
            continue
        if r.segment is not None:
            bad = segment_problem(r.segment, res.sample_rate, res.num_samples, config.sample_rate, config.n_fft)
            if bad is not None:
                problems.append(_row_error(pc, r, f"{p}: {bad}"))
                continue
        first, stop = sample_range(r.segment, res.sample_rate, res.num_samples) if r.segment else (0, res.num_samples)
        good_rows.append(r)
        good_paths.append(p)
        infos.append(res)
        samples.append(stop - first)  # at the file's rate
    content = PartitionContent(
        task=sources.task,
        partition=pc.partition,
        files=[r.key for r in good_rows],
        label_ids=[label_id[r.label] if r.label is not None else -1 for r in good_rows],
        frames=[
            config.num_frames(resampled_length(n, i.sample_rate, config.sample_rate))
            for n, i in zip(samples, infos, strict=True)
        ],
        seconds=[n / i.sample_rate for n, i in zip(samples, infos, strict=True)],
        n_mels=config.n_mels,
        labelled=pc.labelled,
        paths=[str(p) for p in good_paths],
        segments=[r.segment for r in good_rows] if any(r.segment for r in good_rows) else [],
    )
    problems.sort(key=lambda e: e.row or 0)
    converted = sum(1 for i in infos if i.channels != 1 or i.sample_rate != config.sample_rate)
    return PartitionPlan(csv=pc, content=content, skipped=[e.as_record() for e in problems], converted=converted)


def _spans(pc: PartitionCsv) -> dict[str, list[tuple[float, float, str]]]:
    """Normalised file -> (start, end, key) of its rows (a whole file spans everything)."""
    out: dict[str, list[tuple[float, float, str]]] = {}
    for r in pc.rows:
        start, end = r.segment or (0.0, math.inf)
        out.setdefault(normalise_key(r.file), []).append((start, end, r.key))
    return out


def _shared(a: dict, b: dict) -> list[str]:
    """Keys of ``a``'s utterances whose audio overlaps one of ``b``'s (same file, time ranges
    that intersect), sorted."""
    return sorted(
        ka for f in a.keys() & b.keys() for sa, ea, ka in a[f] if any(sa < eb and sb < ea for sb, eb, _ in b[f])
    )


def _overlap_warnings(task: str, csvs: dict[str, PartitionCsv]) -> list[str]:
    """One line per pair of partitions that list the same audio: the same file (normalised
    paths), or overlapping segments of one file."""
    spans = {p: _spans(pc) for p, pc in csvs.items()}
    out = []
    for a, b in (("train", "devel"), ("train", "test"), ("devel", "test")):
        if a in spans and b in spans:
            both = _shared(spans[a], spans[b])
            if both:
                out.append(
                    f"warning: task {task!r}: {len(both)} file(s) are in both {a} and {b} (e.g. '{both[0]}'); "
                    f"check {csvs[a].path.name} and {csvs[b].path.name}"
                )
    return out


def plan_task(
    sources: TaskSources,
    data_path: Path,
    config: FeatureConfig,
    *,
    probe_many: Callable[[list[Path]], list] = probe_all,
) -> tuple[TaskPlan, list[InputError]]:
    """Reads and checks one task's csvs and audio headers.

    Args:
        sources: the task's name and csv paths.
        data_path: the folder the csvs' file paths are relative to.
        config: the feature config (frame counts and resampling follow from it).
        probe_many: reads a list of audio headers, possibly in parallel.

    Returns:
        The plan (without the bad rows; warnings such as files in two partitions in
        ``TaskPlan.warnings``) and the row problems found.
    """
    csvs = sources.tables or {p: read_partition_csv(path, p) for p, path in sources.csvs.items()}
    train = csvs["train"]
    classes = class_list(r.label for r in train.rows)
    if not classes:
        raise InputError(
            f"{train.path}: no usable rows in the train csv; task {sources.task!r} needs labelled training data"
        )
    label_id = {c: i for i, c in enumerate(classes)}
    plans = {
        part: _plan_partition(sources, csvs[part], data_path, config, label_id, train.path.name, probe_many)
        for part in PARTITIONS
        if part in csvs
    }
    problems = [
        InputError(r["reason"], source=r["csv"], row=r["row"], file=r["file"])
        for p in plans.values()
        for r in p.skipped
    ]
    if len(plans["train"].content) == 0:
        raise InputError(
            f"{train.path}: none of its {len(train.rows) + len(train.problems)} row(s) is usable "
            f"({problems[0] if problems else 'no rows'}); task {sources.task!r} needs at least one good training file"
        )
    warnings = [*sources.notes, *_overlap_warnings(sources.task, csvs)]
    return TaskPlan(task=sources.task, classes=classes, partitions=plans, warnings=warnings), problems


def label_counts(plan: PartitionPlan, classes: list[str]) -> dict[str, int]:
    ids = plan.content.label_ids
    return {c: int(np.sum(ids == k)) for k, c in enumerate(classes) if np.any(ids == k)}
