"""What ``emonet evaluate`` writes into its output folder: ``results.json`` (task -> partition
-> metrics, as a run's), ``predictions.csv`` (one row per file and task) and one confusion
matrix PNG per scored task. Each file is written atomically, under a lock on the folder, so
two evaluations into one folder leave the files of one of them."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from emonet.errors import ConfigError
from emonet.utils.fs import atomic_write_bytes, filesystem_errors

RESULTS = "results.json"
PREDICTIONS = "predictions.csv"


@dataclass(frozen=True)
class PredictionRow:
    """One file's prediction for one task, as a row of a predictions table."""

    file: str
    task: str
    true_label: str | None  # None: unlabelled, or not known (``emonet predict``)
    predicted_label: str
    probabilities: dict[str, float]  # class -> probability, in the task's class order
    head: str | None = None  # cross-corpus: the task whose head scored the file (None: ``task``'s own)


def predictions_csv(rows: Iterable[PredictionRow], truth: bool = True) -> str:
    """The one predictions table of ``emonet evaluate`` (predictions.csv) and ``emonet predict``:
    file, task, true_label (empty: unlabelled), predicted_label, then ``p_<class>`` for every
    class of every task in first-seen order (a row fills its own task's columns).

    ``truth=False`` leaves out the true_label column: ``emonet predict`` reads audio alone and
    cannot know it; every other column is the same for both commands. A cross-corpus
    evaluation adds a ``head`` column after ``task``: the task whose head scored the file
    (its classes are the labels and the ``p_`` columns)."""
    rows = list(rows)
    cols = list(dict.fromkeys(f"p_{c}" for r in rows for c in r.probabilities))
    heads = any(r.head is not None for r in rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["file", "task", *(["head"] if heads else []), *(["true_label"] if truth else []), "predicted_label", *cols]
    )
    for r in rows:
        probs = {f"p_{c}": f"{v:.6f}" for c, v in r.probabilities.items()}
        true = [r.true_label or ""] if truth else []
        head = [r.head or r.task] if heads else []
        writer.writerow([r.file, r.task, *head, *true, r.predicted_label, *(probs.get(c, "") for c in cols)])
    return buf.getvalue()


def evaluation_rows(evaluation) -> Iterator[PredictionRow]:
    """The rows of an evaluation's predictions table, task by task in storage order."""
    for e in evaluation.tasks.values():
        for i, f in enumerate(e.files):
            true = e.classes[e.labels[i]] if e.labels[i] >= 0 else None
            probs = dict(zip(e.classes, e.probabilities[i].tolist(), strict=True))
            yield PredictionRow(f, e.task, true, e.classes[e.predictions[i]], probs, e.head)


def confusion_title(task: str, partition: str, uar: float | None) -> str:
    """The title of a confusion-matrix plot: task, partition and UAR (when defined)."""
    return f"{task} ({partition})" + (f": UAR {uar:.3f}" if uar is not None and math.isfinite(uar) else "")


def confusion_png(cm: list[list[int]], classes: list[str], title: str) -> bytes:
    """A confusion matrix (rows true, columns predicted; counts in the cells) as PNG bytes: the
    one plotter of a run's plots/confusion_<task>.png and ``emonet evaluate``'s PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.6 + 0.6 * k, 1.2 + 0.6 * k))
    ax.imshow(cm, cmap="Blues")
    top = max((max(row) for row in cm), default=0)
    for i in range(k):
        for j in range(k):
            colour = "white" if top and cm[i][j] > top / 2 else "black"
            ax.text(j, i, str(cm[i][j]), ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def output_files(evaluation) -> dict[str, bytes]:
    """File name -> bytes of everything an evaluation writes."""
    files = {
        RESULTS: (json.dumps(evaluation.results(), indent=1, sort_keys=True) + "\n").encode(),
        PREDICTIONS: predictions_csv(evaluation_rows(evaluation)).encode(),
    }
    for t, e in evaluation.tasks.items():  # t: the task, or HEAD_on_TASK (cross-corpus)
        if e.metrics is not None:
            what = t if e.head is None else f"{e.task} by the {e.head} head"
            title = confusion_title(what, e.partition, e.metrics["uar"])
            files[f"confusion_{t}.png"] = confusion_png(e.metrics["confusion_matrix"], e.classes, title)
    return files


def write_evaluation(evaluation, folder: str | Path) -> Path:
    """Write :func:`output_files` into ``folder`` (created if missing); returns the folder.

    Raises:
        ConfigError: ``folder`` is a file. FilesystemError: the filesystem refused a write.
    """
    import fcntl

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--output {folder}: is a file, not a folder; give a folder for the evaluation's files")
    files = output_files(evaluation)  # rendered before the folder is touched
    with filesystem_errors(folder, "check --output, its permissions and free space"):
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # another evaluation writing here: wait (writing takes a moment)
            for name, data in files.items():
                atomic_write_bytes(folder / name, data)
        finally:
            os.close(fd)
    return folder
