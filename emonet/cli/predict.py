"""`emonet predict`: run a checkpoint on audio files, folders or csvs (no store needed)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from emonet.cli.console import err, out
from emonet.cli.run_options import Device


class OutputFormat(StrEnum):
    csv = "csv"
    json = "json"


def predict(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            metavar="INPUT", help="Audio files, folders (searched recursively) or csvs with a 'file' column."
        ),
    ],
    model: Annotated[Path, typer.Option("--model", help="Model checkpoint (.safetensors).")],
    task: Annotated[
        str | None, typer.Option("--task", metavar="TASK", help="The task to predict (default: all).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: print to stdout).")
    ] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.csv,
    data_path: Annotated[
        Path | None, typer.Option("--data-path", "-dp", help="Folder a csv's paths are relative to (default: its own).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-bs", min=1, help="Files per forward pass.")] = 16,
    device: Device = "cpu",
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="List and skip unreadable audio instead of stopping.")
    ] = False,
) -> None:
    """Predict labels and class probabilities for audio with a trained model.

    Any sample rate and channel count: the checkpoint's features are computed as 'emonet extract' does.

    Example: emonet predict --model runs/demo/best.safetensors clips/ --output predictions.csv
    """
    from emonet.inference.inputs import collect_inputs
    from emonet.inference.output import render_predictions, write_predictions
    from emonet.inference.predict import Predictor

    predictor = Predictor(model, device=device, batch_size=batch_size)
    tasks = predictor.check_tasks([task] if task else None)
    files = collect_inputs(inputs, data_path)
    report = predictor.predict(files, tasks, skip_bad=skip_bad)
    if output is not None:
        write_predictions(report.predictions, output, fmt.value)
    else:
        sys.stdout.write(render_predictions(report.predictions, fmt.value))
    for s in report.skipped:
        err.print(f"skipped {s['file']}: {s['reason']}", highlight=False, markup=False, soft_wrap=True)
    secs = report.elapsed or 1e-9
    share = report.feature_seconds / secs
    summary = (
        f"{report.files} file(s), {len(tasks)} task(s) in {secs:.2f} s: {report.files / secs:,.1f} files/s, "
        f"{report.audio_seconds / secs:,.0f}x real time ({share:.0%} decoding and features)"
    )
    (out if output is not None else err).print(summary + (f"; wrote {output}" if output else ""), highlight=False)
