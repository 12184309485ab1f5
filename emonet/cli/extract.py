"""`emonet extract`: wavs listed in csv partitions -> a sharded log-mel feature store."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from emonet.cli import feature_options as fo
from emonet.cli import run_options as ro
from emonet.cli.console import err, out
from emonet.cli.progress import RichProgress
from emonet.cli.render import skipped_lines, store_summary, store_table
from emonet.errors import ConfigError

STORE_FORMATS = ("zarr", "webdataset")  # emonet.store's backends; tests/cli holds the two lists equal
STORE_CODECS = ("zstd3", "lz4", "none")  # emonet.store.codec.CODECS; tests/cli holds the two lists equal

Store = Annotated[Path, typer.Option("--store", "-s", help="Feature store folder to create or add to.")]
DataPath = Annotated[Path, typer.Option("--data-path", "-dp", help="Folder the csv file paths are relative to.")]
Task = Annotated[str | None, typer.Option("--task", "-t", metavar="NAME", help="Single-task mode: the task's name.")]
TrainCsv = Annotated[Path | None, typer.Option("--train-csv", "-tr", help="Single-task mode: training csv.")]
ValCsv = Annotated[Path | None, typer.Option("--val-csv", "-v", help="Single-task mode: validation (devel) csv.")]
TestCsv = Annotated[
    Path | None, typer.Option("--test-csv", "-te", help="Single-task mode: test csv (label column optional).")
]
MultiTaskSetup = Annotated[
    Path | None,
    typer.Option("--multi-task-setup", "-mts", help="Multi-task mode: folder with one subfolder of csvs per task."),
]
Tasks = Annotated[
    list[str] | None,
    typer.Option("--tasks", metavar="TASK...", help="Multi-task mode: the tasks, space-separated (--tasks a b c)."),
]
EmoBox = Annotated[
    Path | None,
    typer.Option("--emobox", metavar="META_ROOT", help="EmoBox mode: the EmoBox metadata checkout (holds data/)."),
]
Dataset = Annotated[str | None, typer.Option("--dataset", help="EmoBox mode: the corpus (a folder of data/).")]
Folds = Annotated[
    list[str] | None,
    typer.Option("--folds", metavar="K...", help="EmoBox mode: the folds, space-separated, or 'all' (the default)."),
]
SpeakerRegex = Annotated[
    str | None,
    typer.Option(
        "--speaker-regex",
        metavar="REGEX",
        help="EmoBox mode, no valid file: the speaker of a wav path (its groups joined) for the devel split.",
    ),
]
Seed = Annotated[int, typer.Option("--seed", help="EmoBox mode, no valid file: the seed of the 80/20 devel split.")]
Format = Annotated[Literal[STORE_FORMATS], typer.Option("--format", "-f", help="Store format.")]
Codec = Annotated[
    Literal[STORE_CODECS],
    typer.Option(
        "--codec",
        help="Frame compression: zstd3 (smallest store), lz4 (faster cold reads, store ~1.2x larger), none (raw).",
    ),
]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace partitions or a store extracted differently.")]
SkipBad = Annotated[
    bool,
    typer.Option("--skip-bad", help="Skip bad rows/files (listed in the summary and stored) instead of failing."),
]
FramesPerShard = Annotated[
    int | None, typer.Option("--frames-per-shard", min=1, help="Frames per zarr shard / webdataset tar (advanced).")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


def extract(
    ctx: typer.Context,
    store: Store,
    data_path: DataPath,
    task: Task = None,
    train_csv: TrainCsv = None,
    val_csv: ValCsv = None,
    test_csv: TestCsv = None,
    multi_task_setup: MultiTaskSetup = None,
    tasks: Tasks = None,
    emobox: EmoBox = None,
    dataset: Dataset = None,
    folds: Folds = None,
    speaker_regex: SpeakerRegex = None,
    seed: Seed = 0,
    fmt: Format = "zarr",
    codec: Codec = "zstd3",
    sample_rate: fo.SampleRate = 16000,
    num_mels: fo.NumMels = 128,
    n_fft: fo.NFft = 1024,
    hop_length: fo.HopLength = 512,
    f_min: fo.FMin = 20.0,
    f_max: fo.FMax = 8000.0,
    workers: ro.Workers = None,
    device: ro.Device = "cpu",
    overwrite: Overwrite = False,
    skip_bad: SkipBad = False,
    frames_per_shard: FramesPerShard = None,
    quiet: Quiet = False,
) -> None:
    """Turn wavs listed in csv partitions into a sharded, compressed log-mel store.

    Example: emonet extract -s features/ -dp corpus/data -mts corpus/multi-task-setup --tasks acted arousal

    EmoBox: emonet extract -s features/ -dp downloads --emobox EmoBox --dataset emodb --folds all
    """
    from emonet.extraction.runner import run_extract  # lazy: keeps torch and zarr off 'emonet --help'

    report = run_extract(extract_options(ctx.params), RichProgress(err, enabled=not quiet))
    print_report(store, report, sample_rate)


def extract_options(p: Mapping[str, Any]):
    """The ExtractOptions of parsed ``emonet extract`` options (by parameter name: ``ctx.params``),
    shared by the command and the pipeline's extract stages (emonet.cli.stages)."""
    from emonet.extraction.runner import ExtractOptions  # lazy: keeps torch and zarr off 'emonet --help'

    return ExtractOptions(
        store=p["store"],
        data_path=p["data_path"],
        sources=_emobox_sources(p) if p.get("emobox") is not None else _csv_sources(p),
        features=fo.feature_config(
            p["sample_rate"], p["num_mels"], p["n_fft"], p["hop_length"], p["f_min"], p["f_max"]
        ),
        backend=p["fmt"],
        codec=p["codec"],
        device=p["device"],
        overwrite=p["overwrite"],
        skip_bad=p["skip_bad"],
        frames_per_shard=p["frames_per_shard"],
        **({"workers": p["workers"]} if p["workers"] is not None else {}),
    )


def _emobox_sources(p: Mapping[str, Any]) -> list:
    """One task per asked fold of the EmoBox corpus ``--dataset`` (``D-fold1`` ...)."""
    from emonet.data.emobox import fold_sources  # lazy: keeps torch and zarr off 'emonet --help'

    csv_mode = {"--task": "task", "-tr": "train_csv", "-v": "val_csv", "-te": "test_csv"}
    csv_mode |= {"-mts": "multi_task_setup", "--tasks": "tasks"}
    given = [option for option, name in csv_mode.items() if p.get(name)]
    if given:
        raise ConfigError(f"--emobox names the tasks itself (DATASET-foldK); drop {', '.join(given)}")
    if not p.get("dataset"):
        raise ConfigError("--emobox needs --dataset NAME (a folder of the checkout's data/)")
    return fold_sources(p["emobox"], p["dataset"], p.get("folds"), p.get("speaker_regex"), p.get("seed") or 0)


def _csv_sources(p: Mapping[str, Any]) -> list:
    """The csv sources of single-task (``--task``) or multi-task (``--multi-task-setup``) mode."""
    task, train_csv, val_csv, test_csv = p["task"], p["train_csv"], p["val_csv"], p["test_csv"]
    multi_task_setup, tasks = p["multi_task_setup"], p["tasks"]
    from emonet.data.partitions import (  # lazy: keeps torch and zarr off 'emonet --help'
        multi_task_sources,
        single_task_sources,
    )

    if multi_task_setup is not None:
        if task or train_csv or val_csv or test_csv:
            raise ConfigError("use either --multi-task-setup with --tasks, or --task with -tr/-v/-te, not both")
        return multi_task_sources(multi_task_setup, list(tasks or []))
    if tasks:
        raise ConfigError(
            "--tasks needs --multi-task-setup; for one task use --task NAME -tr train.csv -v devel.csv -te test.csv"
        )
    if not task or train_csv is None:
        raise ConfigError(
            "name the input: --task NAME -tr train.csv [-v devel.csv] [-te test.csv], "
            "or --multi-task-setup DIR --tasks a b c"
        )
    return [single_task_sources(task, train_csv, val_csv, test_csv)]


def print_report(store: Path, report, sample_rate: int) -> None:
    """The store's table, the skipped rows and files, and the speed of the run."""
    info = store_summary(store)
    statuses = {(r.task, r.partition): r.status for r in report.results}
    out.print(store_table(info, statuses))
    skipped = [s for r in report.results for s in r.skipped]
    if skipped:
        out.print(skipped_lines(skipped), soft_wrap=True, highlight=False, markup=False)
    converted = sum(r.converted for r in report.results if r.status != "up to date")
    work = report.work_seconds
    if work:
        out.print(
            f"extracted {work / 3600:.3f} h of audio in {report.elapsed:.1f} s "
            f"({work / report.elapsed:,.0f}x real time); "
            f"{converted} file(s) downmixed/resampled to mono {sample_rate} Hz"
        )
    else:
        out.print("nothing to do: every partition is up to date")
