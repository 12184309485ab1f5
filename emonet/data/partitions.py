"""csv partitions in the original EmoNet's layout: a header ``file,label``, one row per utterance,
paths relative to the data path. The label column may be absent from a test csv
(unlabelled). Optional ``start`` and ``end`` columns (seconds) name a segment of the file
(:mod:`emonet.data.segments`); a row that leaves both empty is the whole file. Row problems
are returned, not raised, so ``--skip-bad`` can skip them."""

from __future__ import annotations

import csv
import hashlib
import io
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from emonet.data.segments import Segment, SegmentError, parse_segment, segment_key
from emonet.errors import EmoNetError, InputError
from emonet.store.names import (
    PARTITIONS,  # noqa: F401  (defined with the store: a partition is a store folder)
    check_task_name,
)

# csv names the original EmoNet used for each store partition, in order of preference
MULTI_TASK_CSV_NAMES = {"train": ("train.csv",), "devel": ("val.csv", "devel.csv"), "test": ("test.csv",)}


@dataclass(frozen=True)
class Row:
    line: int  # line number in the csv file (the header is line 1)
    file: str  # the file path exactly as written in the csv
    label: str | None
    start: float | None = None  # the segment's bounds in seconds; None for the whole file
    end: float | None = None

    @property
    def segment(self) -> Segment | None:
        return None if self.start is None else (self.start, self.end)

    @property
    def key(self) -> str:
        """The utterance key in a store: ``file``, or ``file@start-end`` for a segment."""
        return segment_key(self.file, self.segment)


@dataclass
class PartitionCsv:
    partition: str  # train | devel | test
    path: Path
    sha256: str
    labelled: bool
    rows: list[Row]
    problems: list[InputError] = field(default_factory=list)
    # how the partition was made where it is not a csv file as given (EmoBox: the jsonl, the
    # label map, a devel split's rule, seed and speakers); stored in the partition's record
    origin: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TaskSources:
    """Where one task's csvs are: partition name -> csv path. ``tables`` holds partitions
    already read from another format (EmoBox jsonl, :mod:`emonet.data.emobox`), used instead
    of reading ``csvs``; ``notes`` are one-line notices shown when the task is planned."""

    task: str
    csvs: dict[str, Path]
    tables: dict[str, PartitionCsv] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _fail(path: Path, msg: str) -> InputError:
    return InputError(f"{path}: {msg}", source=str(path))


def normalise_key(key: str) -> str:
    """A csv file key compared as a path: ``a/./x.wav``, ``a//x.wav`` and ``a/b/../x.wav``
    are all ``a/x.wav``."""
    return posixpath.normpath(key)


def utterance_key(file: str, segment: Segment | None) -> str:
    """What two rows of a partition must not share: the file compared as a path
    (:func:`normalise_key`) and its segment. The csv and EmoBox readers both find duplicates by it."""
    norm = posixpath.normpath(file)
    return norm if segment is None else segment_key(norm, segment)


def read_partition_csv(path: Path, partition: str) -> PartitionCsv:
    """Parses and checks one csv. csv-level problems raise EmoNetError; row problems are
    collected in ``.problems``."""
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "csv file not found; check the path")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _fail(path, "is not UTF-8 text; save the csv as UTF-8") from None
    try:  # newline="": any line ending (LF, CRLF or a lone CR) ends a row
        lines = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise _fail(path, f"is not a readable csv ({exc}); check its quoting and save it as plain csv") from None
    # drop blank lines but keep line numbers
    numbered = [(i + 1, r) for i, r in enumerate(lines) if "".join(r).strip()]
    if not numbered:
        raise _fail(path, "csv is empty; it needs a header 'file,label' and one row per utterance")
    header_line, header = numbered[0]
    cols = [c.strip().lower() for c in header]
    if "file" not in cols:
        first = ",".join(header)[:60]
        for sep, name in ((";", "semicolons"), ("\t", "tabs")):
            if sep in first and "file" in first.lower():
                raise _fail(
                    path,
                    f"line {header_line} separates columns with {name} (found '{first}'); "
                    "save the csv comma-separated, as 'file,label'",
                )
        raise _fail(
            path,
            f"line {header_line} is not a header with a 'file' column (found '{first}'); "
            "add the header line 'file,label'",
        )
    labelled = "label" in cols
    if partition != "test" and not labelled:
        raise _fail(
            path,
            f"has no 'label' column (header: {','.join(header)}); the {partition} csv needs 'file,label'",
        )
    fi, li = cols.index("file"), (cols.index("label") if labelled else None)
    if ("start" in cols) != ("end" in cols):
        given, missing = ("start", "end") if "start" in cols else ("end", "start")
        raise _fail(
            path,
            f"line {header_line} has a '{given}' column but no '{missing}' column; "
            "a segment needs both (seconds), or drop the column",
        )
    segment_cols = (cols.index("start"), cols.index("end")) if "start" in cols else None
    body = numbered[1:]
    if not body:
        raise _fail(path, "csv has a header but no rows; add one row per utterance")

    rows, problems = _read_rows(path, body, (fi, li, segment_cols), len(cols))
    return PartitionCsv(
        partition=partition,
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        labelled=labelled,
        rows=rows,
        problems=problems,
    )


def _read_rows(path: Path, body: list, columns: tuple, n_cols: int) -> tuple[list[Row], list[InputError]]:
    """The usable rows of a csv body, and one InputError per row that is not. ``columns``:
    the indices of file, label (or None) and (start, end) (or None). A row may stop before
    the segment columns (both empty: the whole file)."""
    fi, li, segment_cols = columns
    rows: list[Row] = []
    problems: list[InputError] = []
    seen: dict[str, int] = {}  # normalised utterance key -> line

    def problem(line: int, message: str, key: str = "") -> None:
        problems.append(InputError(f"{path} row {line}: {message}", source=str(path), row=line, file=key))

    need = max(fi, li if li is not None else 0) + 1
    for line, rec in body:
        if len(rec) < need:
            problem(line, f"has {len(rec)} column(s), expected {n_cols}; fix the row")
            continue
        key = rec[fi].strip()
        label = rec[li].strip() if li is not None else None
        if not key:
            problem(line, "empty file name; fill it in or delete the row")
            continue
        if li is not None and not label:
            problem(line, f"empty label for '{key}'; fill it in or delete the row", key)
            continue
        try:
            segment = _segment_of(rec, segment_cols) if segment_cols else None
        except SegmentError as exc:
            problem(line, f"'{key}': {exc}", key)
            continue
        norm = utterance_key(key, segment)
        if norm in seen:
            what = f"'{key}'" if segment is None else f"'{segment_key(key, segment)}' (same file and segment)"
            problem(line, f"{what} duplicates row {seen[norm]}; delete one of the two rows", key)
        else:
            seen[norm] = line
            start, end = segment if segment is not None else (None, None)
            rows.append(Row(line=line, file=key, label=label, start=start, end=end))
    return rows, problems


def _segment_of(rec: list[str], segment_cols: tuple[int, int]) -> Segment | None:
    """The row's segment (None: the whole file); a missing trailing cell counts as empty."""
    si, ei = segment_cols
    return parse_segment(rec[si] if si < len(rec) else "", rec[ei] if ei < len(rec) else "")


def single_task_sources(task: str, train: Path, devel: Path | None, test: Path | None) -> TaskSources:
    """The original EmoNet's single-task form: a task name and its csvs (devel and test optional)."""

    check_task_name(task)
    csvs = {"train": Path(train)}
    if devel is not None:
        csvs["devel"] = Path(devel)
    if test is not None:
        csvs["test"] = Path(test)
    return TaskSources(task=task, csvs=csvs)


def multi_task_sources(setup_dir: Path, tasks: list[str]) -> list[TaskSources]:
    """The original EmoNet's multi-task setup: one folder per task with train.csv, val.csv (or
    devel.csv) and test.csv."""

    setup_dir = Path(setup_dir)
    if not setup_dir.is_dir():
        raise EmoNetError(
            f"{setup_dir}: multi-task setup folder not found; pass the folder that holds one subfolder per task"
        )
    available = sorted(p.name for p in setup_dir.iterdir() if p.is_dir())
    if not tasks:
        raise EmoNetError(
            f"no tasks given; name them with --tasks (available in {setup_dir}: {', '.join(available) or 'none'})"
        )
    out = []
    for task in tasks:
        folder = setup_dir / check_task_name(task)
        if not folder.is_dir():
            raise EmoNetError(
                f"{folder}: no such task folder in the multi-task setup; available: {', '.join(available) or 'none'}"
            )
        csvs: dict[str, Path] = {}
        for part, names in MULTI_TASK_CSV_NAMES.items():
            found = [folder / n for n in names if (folder / n).is_file()]
            if len(found) > 1:
                raise EmoNetError(
                    f"{folder}: both {found[0].name} and {found[1].name} exist; keep one as the validation partition"
                )
            if found:
                csvs[part] = found[0]
        if "train" not in csvs:
            raise EmoNetError(f"{folder}: train.csv not found; each task folder needs train.csv, val.csv and test.csv")
        out.append(TaskSources(task=task, csvs=csvs))
    return out


def label_sort_key(label: str):
    """Numeric labels sort by value (so ordinal ranks are right), others alphabetically."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def class_list(train_labels) -> list[str]:
    return sorted(set(train_labels), key=label_sort_key)
