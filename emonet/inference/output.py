"""Writing predictions: CSV (the predictions table of :func:`emonet.evaluation.outputs.predictions_csv`,
without the true label) or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from emonet.evaluation.outputs import PredictionRow, predictions_csv
from emonet.inference.predict import Prediction
from emonet.utils.output_paths import write_output_file

FORMATS = ("csv", "json")


def prediction_rows(predictions: Sequence[Prediction]) -> list[PredictionRow]:
    """The predictions as rows of the one predictions table (no true label: audio alone)."""
    return [PredictionRow(p.file, p.task, None, p.label, p.probabilities) for p in predictions]


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
    return predictions_csv(prediction_rows(predictions), truth=False) if fmt == "csv" else predictions_json(predictions)


def write_predictions(
    predictions: Sequence[Prediction], path: str | Path, fmt: str = "csv", *, overwrite: bool = True
) -> Path:
    """Write the predictions to ``path`` atomically (a crash or a full disk leaves any older
    file intact and no temporary file). Without ``overwrite`` an existing file is kept and
    the write refused (EmoNetError), even one another process wrote meanwhile."""
    return write_output_file(path, render_predictions(predictions, fmt).encode(), overwrite=overwrite)
