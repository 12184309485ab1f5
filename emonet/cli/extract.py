"""`emonet extract`: wavs listed in csv partitions -> a sharded log-mel feature store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emonet.cli.console import err, out
from emonet.errors import EmoNetError


def extract(
    store: Annotated[Path, typer.Option("--store", "-s", help="Feature store folder to create or add to.")],
    data_path: Annotated[Path, typer.Option("--data-path", "-dp", help="Folder the csv file paths are relative to.")],
    task: Annotated[
        list[str] | None,
        typer.Option("--task", "-t", metavar="NAME", help="Single-task mode: the task's name."),
    ] = None,
    train_csv: Annotated[
        Path | None, typer.Option("--train-csv", "-tr", help="Single-task mode: training csv.")
    ] = None,
    val_csv: Annotated[
        Path | None, typer.Option("--val-csv", "-v", help="Single-task mode: validation (devel) csv.")
    ] = None,
    test_csv: Annotated[
        Path | None,
        typer.Option("--test-csv", "-te", help="Single-task mode: test csv (label column optional)."),
    ] = None,
    multi_task_setup: Annotated[
        Path | None,
        typer.Option("--multi-task-setup", "-mts", help="Multi-task mode: folder with one subfolder of csvs per task."),
    ] = None,
    tasks: Annotated[
        list[str] | None,
        typer.Option("--tasks", metavar="TASK...", help="Multi-task mode: the tasks, space-separated (--tasks a b c)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Store format: zarr or webdataset.")] = "zarr",
    sample_rate: Annotated[
        int, typer.Option("--sample-rate", "-sr", help="Store sample rate; audio is resampled to it.")
    ] = 16000,
    num_mels: Annotated[int, typer.Option("--num-mels", "-nm", help="Number of mel bands.")] = 128,
    n_fft: Annotated[int, typer.Option("--n-fft", help="FFT size.")] = 1024,
    hop_length: Annotated[int, typer.Option("--hop-length", help="Hop between frames, in samples.")] = 512,
    f_min: Annotated[float, typer.Option("--f-min", help="Lowest mel frequency (Hz).")] = 20.0,
    f_max: Annotated[float, typer.Option("--f-max", help="Highest mel frequency (Hz).")] = 8000.0,
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", help="Parallel decoding workers (default: CPU count).")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="Where the mel is computed: cpu or cuda.")] = "cpu",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace partitions or a store extracted differently.")
    ] = False,
    skip_bad: Annotated[
        bool,
        typer.Option("--skip-bad", help="Skip bad rows/files (listed in the summary and stored) instead of failing."),
    ] = False,
    frames_per_shard: Annotated[
        int | None,
        typer.Option("--frames-per-shard", help="Frames per zarr shard / webdataset tar (advanced)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Turn wavs listed in csv partitions into a sharded, compressed log-mel store."""
    from emonet.cli.progress import RichProgress
    from emonet.cli.render import skipped_lines, store_table
    from emonet.data.features import FeatureConfig
    from emonet.data.partitions import multi_task_sources, single_task_sources
    from emonet.extraction.runner import ExtractOptions, run_extract
    from emonet.store import open_store

    if task and len(task) > 1:
        raise EmoNetError(
            f"--task takes one name (got {' '.join(task)}); for several tasks use --multi-task-setup DIR --tasks a b c"
        )
    task = task[0] if task else None
    if multi_task_setup is not None:
        if task or train_csv or val_csv or test_csv:
            raise EmoNetError("use either --multi-task-setup with --tasks, or --task with -tr/-v/-te, not both")
        sources = multi_task_sources(multi_task_setup, list(tasks or []))
    else:
        if tasks:
            raise EmoNetError(
                "--tasks needs --multi-task-setup; for one task use --task NAME -tr train.csv -v devel.csv -te test.csv"
            )
        if not task or train_csv is None:
            raise EmoNetError(
                "name the input: --task NAME -tr train.csv [-v devel.csv] [-te test.csv], or --multi-task-setup DIR --tasks a b c"
            )
        sources = [single_task_sources(task, train_csv, val_csv, test_csv)]
    try:
        features = FeatureConfig(
            sample_rate=sample_rate,
            n_mels=num_mels,
            n_fft=n_fft,
            hop_length=hop_length,
            f_min=f_min,
            f_max=f_max,
        )
    except ValueError as exc:
        raise EmoNetError(str(exc)) from None
    opts = ExtractOptions(
        store=store,
        data_path=data_path,
        sources=sources,
        features=features,
        backend=fmt,
        device=device,
        overwrite=overwrite,
        skip_bad=skip_bad,
        frames_per_shard=frames_per_shard,
        **({"workers": workers} if workers is not None else {}),
    )
    report = run_extract(opts, RichProgress(err, enabled=not quiet))
    info = open_store(store).info()
    statuses = {(r.task, r.partition): r.status for r in report.results}
    out.print(store_table(info, statuses))
    skipped = [s for r in report.results for s in r.skipped]
    if skipped:
        out.print(skipped_lines(skipped), soft_wrap=True, highlight=False, markup=False)
    converted = sum(r.converted for r in report.results if r.status != "up to date")
    work = report.work_seconds
    if work:
        out.print(
            f"extracted {work / 3600:.3f} h of audio in {report.elapsed:.1f} s ({work / report.elapsed:,.0f}x real time); "
            f"{converted} file(s) downmixed/resampled to mono {sample_rate} Hz"
        )
    else:
        out.print("nothing to do: every partition is up to date")
