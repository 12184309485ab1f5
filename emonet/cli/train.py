"""`emonet train`: the streaming multi-task trainer (a thin layer over emonet.training).

Each option of the command is a :class:`TrainConfig` field (the model options ModelConfig's,
through ``model_options.CONFIG_FIELDS``), listed once in :data:`OPTIONS`; the command's
signature is made from that table, with each field's default. The choices and help of
``--loss`` and ``--optimizer`` come from the registries ``LOSSES`` and ``OPTIMIZERS``. None of
this loads torch (the commands import it when they run).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from emonet.cli import model_options as mo
from emonet.cli import run_options as ro
from emonet.cli.argv import given_options, long_name
from emonet.cli.console import err, out
from emonet.cli.train_progress import RichTrainProgress, results_table
from emonet.errors import ConfigError
from emonet.models import ModelConfig
from emonet.training.config import TrainConfig
from emonet.training.losses import LOSSES
from emonet.training.optim import OPTIMIZERS, optimizer_help
from emonet.training.task_schedule import SCHEDULES

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
Mode = Annotated[str | None, typer.Option("--mode", "-m", help=mo.Mode.__metadata__[0].help)]
BatchSize = Annotated[int, typer.Option("--batch-size", "-bs", help="Utterances per batch.")]
Epochs = Annotated[
    int | None,
    typer.Option(
        "--epochs",
        "-e",
        help="One task: cap on the epochs of all three lr stages together (default 1000). Several: the epochs of "
        "each stage (default 50).",
    ),
]
Patience = Annotated[
    int,
    typer.Option(
        "--patience", "-p", help="Epochs without devel UAR gain before the next stage (one task, --select-best)."
    ),
]
Balanced = Annotated[bool, typer.Option("--balanced-weights", "-bw", help="Class weights n / (k * count).")]
LearningRate = Annotated[float, typer.Option("--learning-rate", "-lr", help="Learning rate of the first stage.")]
Optimizer = Annotated[
    str,
    typer.Option(
        "--optimizer",
        "-o",
        metavar="|".join(OPTIMIZERS),
        help="; ".join(optimizer_help(spec) for spec in OPTIMIZERS.values()) + ".",
    ),
]
Window = Annotated[
    float | None,
    typer.Option(
        "--window",
        "-w",
        help="Window in seconds: a random crop of each training clip, and devel/test scored on one window per clip "
        "(from the midpoint when half the clip is longer). Default: whole utterances.",
    ),
]
ScoreWhole = Annotated[
    bool,
    typer.Option("--score-whole", help="With -w: score devel/test on whole clips, not one window (an improvement)."),
]
Loss = Annotated[
    str,
    typer.Option(
        "--loss",
        "-l",
        metavar="|".join(LOSSES),
        help="; ".join(f"{spec.name}: {spec.help}" for spec in LOSSES.values()) + ".",
    ),
]
Iwd = Annotated[
    bool, typer.Option("--individual-weight-decay", "-iwd", help="L2 on adapter kernels by train-set size.")
]
WeightedMean = Annotated[
    bool,
    typer.Option(
        "--class-weighted-mean",
        help="With -bw, divide a batch's loss by the sum of its weights, not by the batch size as the original.",
    ),
]
RecalibrateBn = Annotated[
    int,
    typer.Option(
        "--recalibrate-bn",
        metavar="N",
        help="Before each devel scoring, re-estimate each task's BatchNorm running statistics from up to N "
        "batches of its train partition (default 0: the original's running averages).",
    ),
]
Spe = Annotated[
    int | None,
    typer.Option(
        "--steps-per-epoch",
        "-spe",
        help="Iterations per epoch; several tasks: one batch of every task each (default 20). One task: default "
        "one pass over its train set.",
    ),
]
TaskScheduleOption = Annotated[
    str,
    typer.Option(
        "--task-schedule",
        metavar="|".join(SCHEDULES),
        help="Several tasks: every-task (one batch of every task per iteration, the original's) or round-robin "
        "(one batch of one task per step, each task in turn).",
    ),
]
SharedOptimizer = Annotated[
    bool,
    typer.Option("--shared-optimizer", help="Several tasks: one optimiser for all tasks (the original: one per task)."),
]
SelectBest = Annotated[
    bool,
    typer.Option(
        "--select-best",
        help="Several tasks: early stopping on the mean devel UAR (-p) and the best weights, as one task (the "
        "original: fixed stages, the final weights).",
    ),
]
Seed = Annotated[
    int,
    typer.Option(
        "--seed", help="Random seed: the same seed gives the same results on a CPU (on a GPU: with --deterministic)."
    ),
]
Deterministic = Annotated[
    bool,
    typer.Option(
        "--deterministic",
        help="Deterministic kernels only: the same seed gives the same results on a GPU too (slower there; "
        "the CPU's are deterministic already).",
    ),
]
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

# The command's options in the order of its help: parameter name -> option. A name is the
# TrainConfig field it sets (a model option: the ModelConfig field mo.CONFIG_FIELDS names),
# except RUN_OPTIONS, which say how this command runs (with their defaults).
OPTIONS: dict[str, Any] = {
    "stores": Stores, "tasks": Tasks, "experiments": Experiments, "mode": Mode, "initial_model": mo.InitialModel,
    "model": mo.ModelType, "blocks": mo.Blocks, "filters": mo.Filters, "widen": mo.Widen, "dropout": mo.Dropout,
    "classifier": mo.Classifier, "share_feature_layer": mo.ShareFeatureLayer, "adapter_type": mo.AdapterType,
    "batch_size": BatchSize, "epochs": Epochs, "patience": Patience, "balanced_weights": Balanced,
    "class_weighted_mean": WeightedMean,
    "learning_rate": LearningRate, "optimizer": Optimizer, "window": Window, "score_whole": ScoreWhole,
    "loss": Loss, "focal_gamma": FocalGamma, "focal_alpha": FocalAlpha, "label_order": LabelOrder,
    "individual_weight_decay": Iwd, "identity_adapters": mo.IdentityAdapters, "band_norm": mo.BandNorm,
    "copy_task_parts": mo.CopyTaskParts, "recalibrate_bn": RecalibrateBn,
    "steps_per_epoch": Spe,
    "task_schedule": TaskScheduleOption, "shared_optimizer": SharedOptimizer, "select_best": SelectBest, "seed": Seed,
    "device": ro.Device,
    "precision": ro.Precision, "deterministic": Deterministic, "workers": Workers, "resume": Resume,
    "run_name": RunName, "quiet": Quiet,
}  # fmt: skip
RUN_OPTIONS = {"resume": None, "quiet": False}


def config_default(name: str) -> Any:
    """The default of the option ``name``: its TrainConfig field's (a model option: its ModelConfig
    field's, as the option writes it). None where the field has none."""
    if name in RUN_OPTIONS:
        return RUN_OPTIONS[name]
    cls, field = (ModelConfig, mo.CONFIG_FIELDS[name]) if name in mo.CONFIG_FIELDS else (TrainConfig, name)
    value = {f.name: f.default for f in dataclasses.fields(cls)}[field]
    if value is dataclasses.MISSING:  # a required field (--store, ...) or a factory's (--label-order)
        return None
    return ",".join(f"{v:g}" for v in value) if field == "dropout" else value


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


def train_config(options: Mapping[str, Any]) -> TrainConfig:
    """The TrainConfig that options of ``emonet train`` describe.

    Args:
        options: parameter name (a key of OPTIONS, RUN_OPTIONS left out) -> value as click
            parses it (``given_options(ctx)`` of a parsed command line), for the options the user
            gave; the others keep the config's defaults. The model options among them are the
            config's ``model_given``. ``label_order`` may also be a task -> classes mapping and
            ``dropout`` a number or a pair.

    Returns:
        The validated TrainConfig; a bad value raises a one-line ConfigError naming its option.
    """
    unknown = sorted(set(options) - set(OPTIONS) | set(options) & set(RUN_OPTIONS))
    if unknown:
        raise ConfigError(f"{', '.join(unknown)}: not options of a training run; see 'emonet train --help'")
    stores, tasks, experiments = options.get("stores"), options.get("tasks"), options.get("experiments")
    if not stores or not tasks or experiments is None:
        raise ConfigError("name the data and the output: --store STORE -t TASK [TASK ...] -ebp EXPERIMENTS")
    model = {k: v for k, v in options.items() if k in mo.CONFIG_FIELDS}
    fields = {k: v for k, v in options.items() if k not in mo.CONFIG_FIELDS}
    fields.update(stores=[str(s) for s in stores], tasks=list(tasks), experiments=str(experiments))
    fields["initial_model"] = str(options["initial_model"]) if options.get("initial_model") else None
    order = options.get("label_order")
    fields["label_order"] = dict(order) if isinstance(order, Mapping) else parse_label_order(order, list(tasks))
    model_given = sorted(mo.CONFIG_FIELDS[k] for k in model)
    return TrainConfig(**fields, model=mo.model_config_from(model), model_given=model_given)


def given_config(ctx) -> TrainConfig:
    """The TrainConfig of a parsed ``emonet train`` context: the options the user gave, the
    rest the config's defaults."""
    return train_config({k: v for k, v in given_options(ctx).items() if k not in RUN_OPTIONS})


def run_train(ctx, progress) -> Path:
    """What ``emonet train`` does once parsed (the command and the pipeline's train stages):
    train, or continue the ``--resume`` run (no other option may be given then), print the
    results table on rank 0, leave the process group; returns the run folder."""
    from emonet.training.api import resume as resume_run  # lazy: keeps torch and zarr off 'emonet --help'
    from emonet.training.api import train as train_run  # lazy: keeps torch and zarr off 'emonet --help'
    from emonet.training.distributed import shutdown, world_info  # lazy: keeps torch and zarr off 'emonet --help'
    from emonet.training.run_dir import read_config  # lazy: keeps torch and zarr off 'emonet --help'

    resume = ctx.params["resume"]
    if resume is not None:
        given = [k for k in given_options(ctx) if k not in RUN_OPTIONS]
        if given:
            raise ConfigError(
                f"--resume continues the run with its own config.yaml (only -q/--quiet may be added); "
                f"drop {', '.join(long_name(ctx, k) for k in given)}"
            )
        run_dir, results = resume_run(resume, progress=progress)
    else:
        run_dir, results = train_run(given_config(ctx), progress=progress)
    if world_info()[0] == 0:
        best = TrainConfig.from_run(read_config(run_dir)).early_stopping
        out.print(results_table(results, run_dir, "the best devel weights" if best else "the final weights"))
    shutdown()
    return run_dir


def train(ctx: typer.Context, **options: Any) -> None:
    """Train a model on one task (single-task) or several (multi-task: one batch of every task per iteration).

    Example: emonet train --store features/ --tasks acted arousal valence -ebp runs/
    """
    run_train(ctx, RichTrainProgress(err, enabled=not options["quiet"]))


train.__signature__ = inspect.Signature(  # what typer reads the options from
    [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    + [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=option, default=config_default(name))
        for name, option in OPTIONS.items()
    ]
)
