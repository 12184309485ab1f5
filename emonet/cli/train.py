"""`emonet train`: the streaming multi-task trainer (a thin layer over emonet.training)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emonet.cli import model_options as mo
from emonet.cli import run_options as ro
from emonet.errors import ConfigError

Stores = Annotated[
    list[Path] | None,
    typer.Option(
        "--store",
        "-s",
        metavar="STORE",
        help="Feature store(s) holding the tasks; repeat for several (one per dataset).",
    ),
]
Tasks = Annotated[
    list[str] | None,
    typer.Option("--tasks", "-t", metavar="TASK...", help="Task(s) to train, space-separated; several: multi-task."),
]
Experiments = Annotated[
    Path | None, typer.Option("--experiment-base-path", "-ebp", help="Folder under which each run gets its folder.")
]
BatchSize = Annotated[int, typer.Option("--batch-size", "-bs", help="Utterances per batch.")]
Epochs = Annotated[int, typer.Option("--epochs", "-e", help="Cap on the epochs of all three lr stages together.")]
Patience = Annotated[int, typer.Option("--patience", "-p", help="Epochs without devel UAR gain before the next stage.")]
Balanced = Annotated[bool, typer.Option("--balanced-weights", "-bw", help="Class weights n / (k * count).")]
LearningRate = Annotated[float, typer.Option("--learning-rate", "-lr", help="Learning rate of the first stage.")]
Optimizer = Annotated[str, typer.Option("--optimizer", "-o", help="sgd | rmsprop | adam | adadelta | adamw.")]
Window = Annotated[float, typer.Option("--window", "-w", help="Training crop in seconds (evaluation: whole clips).")]
Loss = Annotated[str, typer.Option("--loss", "-l", help="crossentropy | focal | ordinal.")]
Iwd = Annotated[
    bool, typer.Option("--individual-weight-decay", "-iwd", help="L2 on adapter kernels by train-set size.")
]
Spe = Annotated[
    int | None,
    typer.Option("--steps-per-epoch", "-spe", help="Steps per epoch (default: see the largest train set once)."),
]
Seed = Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same results on a CPU.")]
Workers = Annotated[int, typer.Option("--workers", "-j", help="Data loader processes (0: in the training process).")]
Resume = Annotated[Path | None, typer.Option("--resume", help="Continue the run in this folder with its config.")]
LabelOrder = Annotated[
    list[str] | None,
    typer.Option(
        "--label-order", metavar="[TASK=]A,B,C", help="Class order for the ordinal loss (per task: TASK=...)."
    ),
]
FocalGamma = Annotated[float, typer.Option("--focal-gamma", help="Focal loss gamma.")]
FocalAlpha = Annotated[float, typer.Option("--focal-alpha", help="Focal loss alpha.")]
RunName = Annotated[str | None, typer.Option("--run-name", help="Name of the run folder (default: time and tasks).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]


def parse_label_order(values: list[str] | None, tasks: list[str]) -> dict[str, list[str]]:
    """``a,b,c`` (one task) or ``task=a,b,c`` (any) -> task -> classes in order."""
    out: dict[str, list[str]] = {}
    for value in values or []:
        task, sep, order = value.partition("=")
        if not sep:
            if len(tasks) != 1:
                raise ConfigError(f"--label-order {value!r}: with several tasks write TASK=A,B,C")
            task, order = tasks[0], value
        out[task] = [c.strip() for c in order.split(",") if c.strip()]
    return out


def options_given(ctx: typer.Context, keep: tuple[str, ...] = ("resume", "quiet")) -> list[str]:
    """The options typed on the command line (or set through the environment), whatever their
    value (a default typed out counts), besides ``keep``; each by its long name."""
    out = []
    for param in ctx.command.params:
        if param.name in keep or getattr(param, "param_type_name", "") != "option":
            continue
        source = ctx.get_parameter_source(param.name)
        if source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT"):
            out.append(max(param.opts, key=len))
    return out


def train(
    ctx: typer.Context,
    stores: Stores = None,
    tasks: Tasks = None,
    experiments: Experiments = None,
    mode: Annotated[str | None, typer.Option("--mode", "-m", help=mo.Mode.__metadata__[0].help)] = None,
    initial_model: mo.InitialModel = None,
    model: mo.ModelType = "cnn",
    blocks: mo.Blocks = 2,
    filters: mo.Filters = 32,
    widen: mo.Widen = 1,
    dropout: mo.Dropout = "0,0.5",
    classifier: mo.Classifier = "attention",
    share_feature_layer: mo.ShareFeatureLayer = False,
    adapter_type: mo.AdapterType = "parallel",
    batch_size: BatchSize = 64,
    epochs: Epochs = 1000,
    patience: Patience = 20,
    balanced_weights: Balanced = False,
    learning_rate: LearningRate = 0.1,
    optimizer: Optimizer = "sgd",
    window: Window = 4.0,
    loss: Loss = "crossentropy",
    focal_gamma: FocalGamma = 2.0,
    focal_alpha: FocalAlpha = 0.25,
    label_order: LabelOrder = None,
    individual_weight_decay: Iwd = False,
    steps_per_epoch: Spe = None,
    seed: Seed = 0,
    device: ro.Device = "auto",
    precision: ro.Precision = "fp32",
    workers: Workers = 0,
    resume: Resume = None,
    run_name: RunName = None,
    quiet: Quiet = False,
) -> None:
    """Train a model on one task (single-task) or several (multi-task, round robin) of feature stores.

    Example: emonet train --store features/ --tasks acted arousal valence -ebp runs/
    """
    from emonet.cli.console import err, out
    from emonet.cli.train_progress import RichTrainProgress, results_table
    from emonet.training.api import resume as resume_run
    from emonet.training.api import train as train_run
    from emonet.training.config import TrainConfig

    progress = RichTrainProgress(err, enabled=not quiet)
    if resume is not None:
        given = options_given(ctx)
        if given:
            raise ConfigError(
                f"--resume continues the run with its own config.yaml (only -q/--quiet may be added); "
                f"drop {', '.join(given)}"
            )
        run_dir, results = resume_run(resume, progress=progress)
    else:
        if not stores or not tasks or experiments is None:
            raise ConfigError("name the data and the output: --store STORE -t TASK [TASK ...] -ebp EXPERIMENTS")
        cfg = mo.model_config(model, blocks, filters, widen, dropout, classifier, share_feature_layer, adapter_type)
        config = TrainConfig(
            stores=[str(s) for s in stores], tasks=list(tasks), experiments=str(experiments), mode=mode,
            initial_model=str(initial_model) if initial_model else None, model=cfg, batch_size=batch_size,
            epochs=epochs, patience=patience, learning_rate=learning_rate, optimizer=optimizer, window=window,
            loss=loss, focal_gamma=focal_gamma, focal_alpha=focal_alpha,
            label_order=parse_label_order(label_order, list(tasks)), balanced_weights=balanced_weights,
            individual_weight_decay=individual_weight_decay, steps_per_epoch=steps_per_epoch, seed=seed,
            device=device, precision=precision, workers=workers, run_name=run_name,
            model_given=sorted(mo.given_fields(ctx)),
        )  # fmt: skip
        run_dir, results = train_run(config, progress=progress)
    from emonet.training.distributed import shutdown, world_info

    if world_info()[0] == 0:
        out.print(results_table(results, run_dir))
    shutdown()
