"""`emonet predict`: run a checkpoint on audio files, folders or csvs (no store needed)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from emonet.cli import run_options as ro
from emonet.cli.console import err, out
from emonet.cli.signals import Terminated
from emonet.errors import EmoNetError
from emonet.inference.inputs import collect_inputs
from emonet.utils.output_paths import check_output_file, free_name, write_output_file


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
        str | None, typer.Option("--output", "-o", metavar="FILE", help="File to write (default: print to stdout).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.csv,
    data_path: Annotated[
        Path | None, typer.Option("--data-path", "-dp", help="Folder a csv's paths are relative to (default: its own).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-bs", min=1, help="Files per forward pass.")] = 16,
    device: ro.Device = "cpu",
    precision: ro.Precision = "fp32",
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="List and skip unreadable audio instead of stopping.")
    ] = False,
) -> None:
    """Predict labels and class probabilities for audio with a trained model.

    Any sample rate and channel count: the checkpoint's features are computed as 'emonet extract' does.
    The output never replaces an input; after Ctrl-C the predictions made so far are kept beside it.

    Example: emonet predict --model runs/demo/best.safetensors clips/ --output predictions.csv
    """
    from emonet.inference.output import (  # lazy: keeps torch and zarr off 'emonet --help'
        render_predictions,
        write_predictions,
    )
    from emonet.inference.predict import Predictor, PredictReport  # lazy: keeps torch and zarr off 'emonet --help'

    report, files, stage = PredictReport(), [], "predicting"
    try:
        predictor = Predictor(model, device=device, batch_size=batch_size, precision=precision)
        tasks = predictor.check_tasks([task] if task else None)
        files = collect_inputs(inputs, data_path)
        if output is not None:  # before any audio is decoded: a refused output costs nothing
            given = [model, *inputs, *([data_path] if data_path else [])]
            output = check_output_file(output, overwrite=overwrite, inputs=[*given, *files])
            before = _identity(output)
        predictor.predict(files, tasks, skip_bad=skip_bad, report=report)
        stage = "writing"
        if output is not None:
            write_predictions(report.predictions, output, fmt.value, overwrite=overwrite)
        else:
            sys.stdout.write(render_predictions(report.predictions, fmt.value))
    except KeyboardInterrupt as exc:
        code = Terminated.exit_code if isinstance(exc, Terminated) else 130
        if stage == "writing" and (output is None or _identity(output) != before):
            where = f"written to {output}" if output is not None else "printed, perhaps cut short"
            _say(f"interrupted after all {report.files} file(s) were predicted: their predictions were {where}")
        else:
            _keep_partial(report, len(files), output, fmt.value)
        raise typer.Exit(code) from None
    _summary(report, len(tasks), output)


def _summary(report, n_tasks: int, output: Path | None) -> None:
    for s in report.skipped:
        err.print(f"skipped {s['file']}: {s['reason']}", highlight=False, markup=False, soft_wrap=True)
    secs = report.elapsed or 1e-9
    share = report.feature_seconds / secs
    summary = (
        f"{report.files} file(s), {n_tasks} task(s) in {secs:.2f} s: {report.files / secs:,.1f} files/s, "
        f"{report.audio_seconds / secs:,.0f}x real time ({share:.0%} decoding and features)"
    )
    (out if output is not None else err).print(summary + (f"; wrote {output}" if output else ""), highlight=False)


def _keep_partial(report, n_files: int, output: Path | str | None, fmt: str) -> None:
    """After Ctrl-C or SIGTERM: the predictions finished so far go to stdout, or (never under
    the output's own name, which would pass for complete) to a new ``OUTPUT.partial`` file;
    one line says what was kept and where."""
    from emonet.inference.output import render_predictions  # lazy: keeps torch and zarr off 'emonet --help'

    done = len({p.file for p in report.predictions})
    if not done:
        _say("interrupted before any file was predicted; nothing was written")
        return
    head = f"interrupted after {done} of {n_files} file(s)"
    text = render_predictions(report.predictions, fmt)
    if output is None:
        sys.stdout.write(text)
        _say(f"{head}: only their predictions were printed; re-run the command to predict all files")
        return
    partial = free_name(output, ".partial")
    try:
        write_output_file(partial, text.encode(), overwrite=False)
    except EmoNetError as exc:
        _say(f"{head}; their predictions could not be kept ({exc})")
        return
    _say(f"{head}: their predictions are in {partial} ({output} was not written); re-run the command for all files")


def _identity(path: Path) -> tuple | None:
    """Which file is at ``path`` now (None: none), to tell whether our write landed."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns)


def _say(line: str) -> None:
    err.print(line, highlight=False, markup=False, soft_wrap=True)
