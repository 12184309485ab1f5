"""The emonet commands as pipeline stages (:mod:`emonet.pipeline.registry`): each command's
option schema is read from its own Typer parameters, so a stage's YAML keys are the command's
long option names and its values are converted by the command line's own conversions; each
stage runs the command's Python function (``emonet.training.train``, ``run_extract``,
``emonet.evaluation.evaluate``, ...) and returns what it made from that function's return
value. ``emonet run`` registers them; a Python caller of ``emonet.pipeline.run_pipeline``
calls :func:`register_stage_commands` once first."""

from __future__ import annotations

import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from emonet.cli import cross_corpus as cross_corpus_cli
from emonet.cli import demo, info, model, predict, verify
from emonet.cli import evaluate as evaluate_cli
from emonet.cli import extract as extract_cli
from emonet.cli import train as train_cli
from emonet.cli.app import app
from emonet.cli.console import err
from emonet.cli.progress import RichProgress
from emonet.cli.train_progress import RichTrainProgress
from emonet.pipeline.registry import OptionSpec, StageCall, StageCommand, register_stage

# Options that name what a stage writes, not what it reads (its positional arguments: WRITES_ARGS).
WRITES = {
    "extract": {"store"},
    "train": {"experiment-base-path"},
    "evaluate": {"output"},
    "cross-corpus": {"output"},
    "predict": {"output"},
}
WRITES_ARGS = {"demo-data", "init-model"}
# Options that take a file or an inline value: a path (inside the workdir; an input of the
# up-to-date check) when the value ends with one of these.
PATH_SUFFIXES = {"label-map": (".json", ".csv")}
RUNS = "runs"  # a train stage writes its runs under WORKDIR/runs/<stage> unless it names its own folder


def _long_name(param) -> str | None:
    longs = [o for o in param.opts if o.startswith("--")]
    return longs[0][2:] if longs else None


def _mentions_path(annotation) -> bool:
    if annotation is Path:
        return True
    return any(_mentions_path(a) for a in typing.get_args(annotation))


def _converter(param, ctx) -> Callable[[Any], Any]:
    """The command line's own conversion of one parameter (types, choices, ranges, parsers)."""

    def convert(value: Any) -> Any:
        try:
            return param.process_value(ctx, value)
        except typer.TyperException as exc:
            raise ValueError(exc.format_message() if hasattr(exc, "format_message") else str(exc)) from None

    return convert


def _spec(param, ctx, writes: bool) -> OptionSpec:
    descriptor = param.type_descriptor
    key = _long_name(param)
    return OptionSpec(
        convert=_converter(param, ctx),
        multiple=bool(param.multiple or param.nargs == -1),
        flag=bool(getattr(param, "is_flag", False)) and not param.multiple,
        path=_mentions_path(descriptor.annotation),
        default=param.default,
        choices=tuple(str(c) for c in descriptor.choices or ()),
        required=bool(param.required),
        writes=writes,
        off_flag=(param.secondary_opts or [None])[0],
        name=param.name if param.param_type_name == "argument" else "",
        path_suffixes=PATH_SUFFIXES.get(key or "", ()),
    )


def command_context(command, name: str, call: StageCall):
    """The command's context as its command line would make it from the stage's values: the
    given ones with the command line as their source, the rest their defaults."""
    ctx = command.make_context(f"emonet {name}", [], resilient_parsing=True)  # nothing to parse: no errors
    ctx.resilient_parsing = False  # each value below is processed as on the command line
    given = {p.name: call.options[k] for p in command.params if (k := _long_name(p)) in call.options}
    given.update({p.name: call.arguments[p.name] for p in command.params if p.name in call.arguments})
    for param in command.params:
        param.handle_parse_result(ctx, {param.name: given[param.name]} if param.name in given else {}, [])
    return ctx


class _ReportingProgress(RichTrainProgress):
    """The command's progress, which also tells the pipeline the run folder as soon as training begins."""

    def __init__(self, started: Callable[[Path], None], enabled: bool):
        super().__init__(err, enabled=enabled)
        self.started = started

    def begin(self, run_dir, steps_per_epoch: int, start_epoch: int) -> None:
        self.started(Path(run_dir))
        super().begin(run_dir, steps_per_epoch, start_epoch)


def _check_train(command, call: StageCall) -> None:
    """The whole TrainConfig of a train stage, built and validated as the run will (nothing on
    disk is read), so a bad combination stops the pipeline before its first stage runs."""
    ctx = command_context(command, "train", call)
    if ctx.params.get("resume") is None:
        train_cli.given_config(ctx)


def _train(ctx, call: StageCall) -> dict[str, str]:
    run = train_cli.run_train(ctx, _ReportingProgress(call.started, enabled=not ctx.params["quiet"]))
    return {"run": str(run), "best": str(run / "best.safetensors"), "last": str(run / "last.safetensors")}


def _extract(ctx, call: StageCall) -> dict[str, str]:
    from emonet.extraction.runner import run_extract  # lazy: keeps torch and zarr off 'emonet --help'

    p = ctx.params
    opts = extract_cli.extract_options(p)
    extract_cli.print_report(p["store"], run_extract(opts, RichProgress(err, enabled=not p["quiet"])), p["sample_rate"])
    return {"store": str(opts.store)}


def _evaluate(ctx, call: StageCall) -> dict[str, str]:
    result = evaluate_cli.evaluation(ctx.params)
    evaluate_cli.print_evaluation(result)
    return {"dir": str(result.output)}


def _cross_corpus(ctx, call: StageCall) -> dict[str, str]:
    result = cross_corpus_cli.run_cross_corpus(ctx.params)
    cross_corpus_cli.print_cross_corpus(result)
    return {"dir": str(result.output)}


def _demo_data(ctx, call: StageCall) -> dict[str, str]:
    demo.demo_data(**ctx.params)  # generate_demo_corpus, and the command's summary
    return {"dir": str(ctx.params["out_dir"])}


def _init_model(ctx, call: StageCall) -> dict[str, str]:
    model.init_model(ctx, **ctx.params)  # model_for_store, save_checkpoint, and the summary
    return {"model": str(ctx.params["out_path"])}


def _predict(ctx, call: StageCall) -> dict[str, str]:
    try:
        predict.predict(**ctx.params)  # Predictor, write_predictions, and the summary
    except typer.Exit as exc:  # a stop (it kept the partial predictions): the pipeline's stop
        stop = KeyboardInterrupt()
        stop.exit_code = exc.exit_code  # 130 after Ctrl-C, 143 after SIGTERM
        raise stop from exc
    output = ctx.params["output"]
    return {"output": str(output)} if output else {}


def _report_only(function) -> Callable:
    def run(ctx, call: StageCall) -> dict[str, str]:
        function(**ctx.params)
        return {}

    return run


# command -> (what its run does with the parsed context, the outputs it offers)
RUNNERS: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "demo-data": (_demo_data, ("dir",)),
    "extract": (_extract, ("store",)),
    "init-model": (_init_model, ("model",)),
    "info": (_report_only(info.info), ()),
    "train": (_train, ("run", "best", "last")),
    "predict": (_predict, ("output",)),
    "evaluate": (_evaluate, ("dir",)),
    "cross-corpus": (_cross_corpus, ("dir",)),
    "verify": (_report_only(verify.verify), ()),
}


def stage_command_for(name: str, command) -> StageCommand:
    """The pipeline's view of one emonet command (``command``: its click command)."""
    ctx = command.make_context(f"emonet {name}", [], resilient_parsing=True)
    options = {
        key: _spec(p, ctx, key in WRITES.get(name, ()))
        for p in command.params
        if p.param_type_name == "option" and (key := _long_name(p))
    }
    arguments = tuple(_spec(p, ctx, name in WRITES_ARGS) for p in command.params if p.param_type_name == "argument")
    runner, outputs = RUNNERS[name]

    def run(call: StageCall) -> dict[str, str]:
        return runner(command_context(command, name, call), call)

    is_train = name == "train"
    return StageCommand(
        name,
        options,
        arguments,
        run,
        outputs,
        defaults={"experiment-base-path": f"{RUNS}/{{stage}}"} if is_train else {},
        resume_option="resume" if is_train else None,
        resume_keeps=("quiet",) if is_train else (),
        check=(lambda call: _check_train(command, call)) if is_train else None,
    )


def register_stage_commands(group=None) -> None:
    """Register the emonet commands as pipeline stages.

    Args:
        group: the root click group of the CLI (default: ``emonet.cli.app``'s).
    """
    if group is None:
        group = typer.main.get_command(app)
    for name, command in group.commands.items():
        if name in RUNNERS:
            register_stage(stage_command_for(name, command))
