"""What ``emonet evaluate`` writes into its output folder: ``results.json`` (task -> partition
-> metrics, as a run's), ``predictions.csv`` (one row per file and task) and one confusion
matrix PNG per scored task. Each file is written atomically, under a lock on the folder, so
two evaluations into one folder leave the files of one of them."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from emonet.errors import ConfigError
from emonet.utils.fs import atomic_write_bytes, filesystem_errors

RESULTS = "results.json"
PREDICTIONS = "predictions.csv"


def predictions_csv(evaluation) -> str:
    """file, task, true_label (empty: unlabelled), predicted_label, then ``p_<class>`` for
    every class of every task (a row fills its own task's columns)."""
    cols = list(dict.fromkeys(f"p_{c}" for e in evaluation.tasks.values() for c in e.classes))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["file", "task", "true_label", "predicted_label", *cols])
    for e in evaluation.tasks.values():
        at = [cols.index(f"p_{c}") for c in e.classes]
        for i, f in enumerate(e.files):
            probs = [""] * len(cols)
            for k, v in zip(at, e.probabilities[i].tolist(), strict=True):
                probs[k] = f"{v:.6f}"
            true = e.classes[e.labels[i]] if e.labels[i] >= 0 else ""
            writer.writerow([f, e.task, true, e.classes[e.predictions[i]], *probs])
    return buf.getvalue()


def confusion_png(cm: list[list[int]], classes: list[str], title: str) -> bytes:
    """A confusion matrix (rows true, columns predicted; counts in the cells) as PNG bytes."""
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
        PREDICTIONS: predictions_csv(evaluation).encode(),
    }
    for t, e in evaluation.tasks.items():
        if e.metrics is not None:
            title = f"{t} ({e.partition}): UAR {e.metrics['uar']:.3f}"
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
