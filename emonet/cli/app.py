"""The ``emonet`` command line: a thin layer over the Python API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from emonet.cli import model_options as mo
from emonet.cli.argv import expand_list_options
from emonet.errors import EmoNetError

app = typer.Typer(
    name="emonet",
    help="Multi-corpus audio classification: extract log-mel stores, train residual-adapter ResNets, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _console(stderr: bool = False) -> Console:
    c = Console(stderr=stderr)
    if not c.is_terminal:  # piped or captured: don't squeeze tables into 80 columns
        c = Console(stderr=stderr, width=160)
    return c


out = _console()
err = _console(stderr=True)


@app.command("demo-data")
def demo_data(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the demo corpus into.")],
    files_per_task: Annotated[int, typer.Option("--files-per-task", "-n", help="Wav files per task.")] = 120,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed writes the same files.")] = 0,
    tasks: Annotated[
        list[str] | None,
        typer.Option("--tasks", metavar="TASK...", help="Demo tasks to write (default: all)."),
    ] = None,
    min_seconds: Annotated[float, typer.Option(help="Shortest utterance.")] = 1.0,
    max_seconds: Annotated[float, typer.Option(help="Longest utterance.")] = 3.0,
) -> None:
    """Write the built-in synthetic demo corpus (16 kHz wavs + csvs in the seed's layout)."""
    from emonet.data.demo import generate_demo_corpus

    try:
        info = generate_demo_corpus(
            out_dir,
            files_per_task=files_per_task,
            seed=seed,
            tasks=tasks,
            min_seconds=min_seconds,
            max_seconds=max_seconds,
        )
    except ValueError as exc:
        raise EmoNetError(str(exc)) from None
    for task, t in info["tasks"].items():
        out.print(
            f"{task}: classes {', '.join(t['classes'])}; train {t['train']}, devel {t['devel']}, test {t['test']} files"
        )
    out.print(
        f"data path: {out_dir / 'data'}\nsingle-task csvs: {out_dir / 'tasks'}/<task>/\nmulti-task setup: {out_dir / 'multi-task-setup'}"
    )


@app.command()
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


@app.command("init-model")
def init_model(
    out_path: Annotated[Path, typer.Argument(help="Checkpoint file to write (.safetensors).")],
    store: Annotated[
        Path,
        typer.Option("--store", "-s", help="Feature store whose tasks, label maps and feature config the model takes."),
    ],
    tasks: Annotated[
        list[str] | None,
        typer.Option(
            "--tasks",
            "-t",
            metavar="TASK...",
            help="Tasks of the store to include (default: all), space-separated.",
        ),
    ] = None,
    mode: mo.Mode = "adapters",
    initial_model: mo.InitialModel = None,
    model: mo.ModelType = "cnn",
    blocks: mo.Blocks = 2,
    filters: mo.Filters = 32,
    widen: mo.Widen = 1,
    dropout: mo.Dropout = "0,0.5",
    classifier: mo.Classifier = "attention",
    share_feature_layer: mo.ShareFeatureLayer = False,
    adapter_type: mo.AdapterType = "parallel",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
) -> None:
    """Build an (untrained) model for a store's tasks in a training mode and save it."""
    from emonet.models import describe_model, render_model_summary, save_checkpoint
    from emonet.store import open_store
    from emonet.training.model_setup import init_model as build

    if out_path.exists() and not overwrite:
        raise EmoNetError(f"{out_path}: exists; choose another path or pass --overwrite")
    cfg = mo.model_config(model, blocks, filters, widen, dropout, classifier, share_feature_layer, adapter_type)
    net, meta = build(open_store(store), tasks, mode, cfg, initial_model)
    save_checkpoint(out_path, net, **meta)
    out.print(render_model_summary(describe_model(net)))
    out.print(
        f"wrote {out_path} (mode {mode}; trainable: {sum(p.numel() for p in net.parameters() if p.requires_grad):,} parameters)"
    )


@app.command()
def info(
    path: Annotated[Path, typer.Argument(help="A feature store folder or a model checkpoint file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Summarise a feature store (tasks, partitions, classes, sizes) or a model."""
    import json

    if path.is_file():
        try:
            from emonet.models import describe_checkpoint, render_model_summary
        except ImportError:
            raise EmoNetError(f"{path}: is a file, and this emonet has no model support to read it") from None
        try:
            desc = describe_checkpoint(path)
        except ValueError as exc:
            raise EmoNetError(str(exc)) from None
        if as_json:
            out.print_json(json.dumps(desc))
        else:
            out.print(render_model_summary(desc))
        return
    from emonet.cli.render import store_table
    from emonet.store import open_store

    data = open_store(path).info()
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        out.print(store_table(data))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``emonet`` console script."""
    args = expand_list_options(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=args, prog_name="emonet", standalone_mode=False)
    except EmoNetError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyError as exc:  # unknown task/partition from the store API
        err.print(f"[bold red]error:[/] {exc.args[0] if exc.args else exc}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted: re-run the same command to resume; finished work is kept")
        return 130
    except OSError as exc:  # the filesystem said no: a path under a file, no permission, disk full
        where = f"{exc.filename}: " if exc.filename else ""
        err.print(
            f"[bold red]error:[/] {where}{exc.strerror or exc}; check the path, its permissions and free space "
            "(finished work is kept; re-run to resume)",
            highlight=False,
            soft_wrap=True,
        )
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return 1
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" or not hasattr(exc, "format_message"):
            show = getattr(exc, "show", None)  # bare `emonet` or `emonet extract`: the help
            if show is not None:
                show()
            return int(getattr(exc, "exit_code", 2))
        # a usage error (unknown option, missing or bad value): one line and where to look
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path} --help" if ctx is not None else "emonet --help"
        msg = " ".join(exc.format_message().split()).rstrip(".")
        err.print(f"[bold red]error:[/] {msg}; see '{where}'", highlight=False, soft_wrap=True, markup=True)
        return int(getattr(exc, "exit_code", 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
