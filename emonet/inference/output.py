"""Writing predictions: CSV (one row per file and task) or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

from emonet.inference.predict import Prediction
from emonet.utils.output_paths import write_output_file

FORMATS = ("csv", "json")


def probability_columns(predictions: Sequence[Prediction]) -> list[str]:
    """``p_<class>`` for every class of every task, in first-seen order. A row fills the
    columns of its own task's classes and leaves the others empty."""
    seen: dict[str, None] = {}
    for p in predictions:
        for c in p.probabilities:
            seen.setdefault(f"p_{c}", None)
    return list(seen)


def predictions_csv(predictions: Sequence[Prediction]) -> str:
    cols = probability_columns(predictions)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["file", "task", "label", *cols])
    for p in predictions:
        probs = {f"p_{c}": f"{v:.6f}" for c, v in p.probabilities.items()}
        writer.writerow([p.file, p.task, p.label, *(probs.get(c, "") for c in cols)])
    return buf.getvalue()


def predictions_json(predictions: Sequence[Prediction]) -> str:
    rows = [
        {
            "file": p.file,
            "task": p.task,
            "label": p.label,
            "probabilities": {c: round(v, 6) for c, v in p.probabilities.items()},
        }
        for p in predictions
    ]
    return json.dumps(rows, indent=1) + "\n"


def render_predictions(predictions: Sequence[Prediction], fmt: str = "csv") -> str:
    """The predictions as CSV or JSON text."""
    return predictions_csv(predictions) if fmt == "csv" else predictions_json(predictions)


def write_predictions(
    predictions: Sequence[Prediction], path: str | Path, fmt: str = "csv", *, overwrite: bool = True
) -> Path:
    """Write the predictions to ``path`` atomically (a crash or a full disk leaves any older
    file intact and no temporary file). Without ``overwrite`` an existing file is kept and
    the write refused (EmoNetError), even one another process wrote meanwhile."""
    return write_output_file(path, render_predictions(predictions, fmt).encode(), overwrite=overwrite)
