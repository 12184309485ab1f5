"""Stages are emonet commands: their option names, types and checks are the CLI's own,
read from the Typer app, so a pipeline and a command line use the same words."""

from __future__ import annotations

import difflib
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from emonet.errors import ConfigError
from emonet.pipeline.spec import REF, Pipeline, Stage

RUNS = "runs"  # train stages write their experiment folders under WORKDIR/runs/<stage>


def commands_table() -> dict[str, Any]:
    from emonet.cli.app import app

    group = typer.main.get_command(app)
    return {name: cmd for name, cmd in group.commands.items() if name != "run"}


def _long_name(param) -> str | None:
    longs = [o for o in param.opts if o.startswith("--")]
    return longs[0][2:] if longs else None


def option_params(cmd) -> dict[str, Any]:
    """long option name (no dashes) -> click parameter, for the command's options."""
    return {name: p for p in cmd.params if p.param_type_name == "option" and (name := _long_name(p))}


def _mentions_path(annotation) -> bool:
    if annotation is Path:
        return True
    return any(_mentions_path(a) for a in typing.get_args(annotation))


def is_path_param(param) -> bool:
    """Whether the parameter takes paths (``Path``, ``Path | None``, ``list[Path]``)."""
    descriptor = getattr(param, "type_descriptor", None)
    return descriptor is not None and _mentions_path(descriptor.annotation)


def resolve_path(value: str, workdir: Path) -> str:
    if value.startswith("${"):  # a reference a dry run cannot resolve yet: shown as written
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else workdir / p)


def _values(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else [value]
    return [str(v) for v in items]


def is_flag(param) -> bool:
    """An on/off option (``--quiet``, ``--balanced-weights``), as opposed to one with a value."""
    return bool(getattr(param, "is_flag", False)) and not param.multiple


def stage_argv(stage: Stage, workdir: Path, resolve: Callable[[str], str]) -> list[str]:
    """The command line of ``stage``: ``resolve`` replaces ``${stage.output}`` references,
    relative paths are taken inside ``workdir``. Positional arguments come after ``--``, so
    that no list option (``--tasks a b``) can take them as its values."""
    cmd = commands_table()[stage.command]
    opts = option_params(cmd)
    argv = [stage.command]
    for key, value in stage.options.items():
        param = opts[key]
        if is_flag(param):  # check_stage lets only YAML booleans through
            if value is True:
                argv.append(f"--{key}")
            elif param.secondary_opts:
                argv.append(param.secondary_opts[0])
            continue
        for v in _values(value):
            v = REF.sub(lambda m: resolve(m.group(0)), v)
            argv += [f"--{key}", resolve_path(v, workdir) if is_path_param(param) else v]
    arguments = [p for p in cmd.params if p.param_type_name == "argument"]
    positional = []
    for i, a in enumerate(stage.args):
        a = REF.sub(lambda m: resolve(m.group(0)), a)
        param = arguments[min(i, len(arguments) - 1)] if arguments else None  # the last may take many
        positional.append(resolve_path(a, workdir) if param is not None and is_path_param(param) else a)
    return argv + (["--", *positional] if positional else [])


def parse_stage_argv(argv: list[str]) -> None:
    """Parses a stage's command line exactly as ``emonet.cli.app.main`` will (list options
    expanded, then the command's own parser), without running it.

    Raises:
        typer.TyperException: what the command line would fail with.
    """
    from emonet.cli.app import app
    from emonet.cli.argv import expand_list_options, list_option_names

    group = typer.main.get_command(app)
    args = expand_list_options(list(argv), list_option_names(group, argv))
    try:
        group.commands[args[0]].make_context(f"emonet {args[0]}", args[1:])
    except typer.Exit:
        pass


def _unknown(pipeline: Pipeline, stage: Stage, key: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; see 'emonet {stage.command} --help'"
    return ConfigError(
        f"{pipeline.path}: stage '{stage.name}': unknown option '{key}' for emonet {stage.command}{hint}"
    )


def leaves_workdir(text: str, workdir: Path) -> bool:
    """Whether a relative path (or the part after a ``${stage.output}``) climbs out of the
    workdir with ``..``. Absolute paths are taken as written."""
    text = REF.sub("ref", text)  # a reference stands for one folder inside the workdir
    p = Path(text).expanduser()
    if p.is_absolute() and not text.startswith("ref"):
        return False
    norm = os.path.normpath(workdir / p)
    return norm != str(workdir) and not norm.startswith(str(workdir) + os.sep)


def _check_values(pipeline: Pipeline, stage: Stage, opts: dict[str, Any]) -> None:
    """Flags take YAML booleans only; every other option a value; no path leaves the workdir."""
    where = f"{pipeline.path}: stage '{stage.name}'"
    for key, value in stage.options.items():
        param = opts[key]
        if is_flag(param):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: '{key}' is a flag: write {key}: true or {key}: false (not {value!r})")
            continue
        if value is None or value == []:
            raise ConfigError(f"{where}: '{key}' has no value; give one or remove the key")
        if isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, dict | list) for v in value)):
            raise ConfigError(f"{where}: '{key}' must be a value or a list of values, not a mapping")
        if is_path_param(param):
            for v in _values(value):
                if leaves_workdir(v, pipeline.workdir):
                    raise ConfigError(f"{where}: '{key}: {v}' leaves the workdir through '..'; {_OUTSIDE}")
    if stage.command == "train" and "resume" in stage.options:
        raise ConfigError(f"{where}: 'resume' is not a pipeline option; re-running the pipeline resumes the stage")
    for a in stage.args:
        if leaves_workdir(a, pipeline.workdir):
            raise ConfigError(f"{where}: argument '{a}' leaves the workdir through '..'; {_OUTSIDE}")


_OUTSIDE = "relative paths stay inside the workdir: write an absolute path for a file outside it"


def check_stage(pipeline: Pipeline, stage: Stage) -> None:
    """Checks a stage against its command without running anything: the command exists,
    every option is one of its long names, flags are booleans, no path leaves the workdir,
    references name outputs the other stage has, and the command line the run will use
    parses (types, choices, ranges) as on the command line.

    Raises:
        ConfigError: one line naming the file, the stage and the key.
    """
    commands = commands_table()
    if stage.command not in commands:
        known = sorted(commands)
        close = difflib.get_close_matches(stage.command, known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"commands: {', '.join(known)}"
        raise ConfigError(f"{pipeline.path}: stage '{stage.name}': unknown command '{stage.command}'; {hint}")
    opts = option_params(commands[stage.command])
    for key in stage.options:
        if key not in opts:
            raise _unknown(pipeline, stage, key, sorted(opts))
    _check_values(pipeline, stage, opts)
    for ref in REF.finditer(repr(stage.options) + repr(stage.args)):
        other, output = ref.group(1), ref.group(2)
        offered = OUTPUTS.get(pipeline.stage(other).command, ())
        if output not in offered:
            raise ConfigError(
                f"{pipeline.path}: stage '{stage.name}': '${{{other}.{output}}}': stage '{other}' offers "
                f"{', '.join(offered) or 'no outputs'}"
            )
    argv = stage_argv(stage, pipeline.workdir, lambda ref: f"{pipeline.workdir}/{ref[2:-1]}")
    try:
        parse_stage_argv(argv)
    except typer.TyperException as exc:
        msg = " ".join(exc.format_message().split()) if hasattr(exc, "format_message") else str(exc)
        raise ConfigError(f"{pipeline.path}: stage '{stage.name}': {msg}") from None


def _option(stage: Stage, key: str, workdir: Path) -> str | None:
    value = stage.options.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else resolve_path(str(value), workdir)


def _newest_run(base: Path) -> Path | None:
    runs = [p for p in base.iterdir() if (p / "config.yaml").is_file()] if base.is_dir() else []
    return max(runs, key=lambda p: p.stat().st_mtime_ns) if runs else None


def stage_outputs(stage: Stage, workdir: Path, resolve: Callable[[str], str] | None = None) -> dict[str, str]:
    """What a stage has made (paths), once it has run: for the references of later stages
    and for the up-to-date check (``resolve`` replaces ``${stage.output}`` references)."""
    if stage.command == "demo-data":
        return {"dir": resolve_path(stage.args[0], workdir)} if stage.args else {}
    if stage.command == "extract":
        return {"store": _option(stage, "store", workdir) or ""}
    if stage.command == "train":
        run = _newest_run(Path(_option(stage, "experiment-base-path", workdir) or workdir / RUNS / stage.name))
        if run is None:
            return {}
        return {"run": str(run), "best": str(run / "best.safetensors"), "last": str(run / "last.safetensors")}
    if stage.command == "evaluate":
        output = _option(stage, "output", workdir)
        if output is None and resolve is not None:  # the command's default: beside the model
            model = REF.sub(lambda m: resolve(m.group(0)), str(stage.options.get("model", "")))
            partition = stage.options.get("partition", "test")
            output = str(Path(resolve_path(model, workdir)).parent / f"evaluate-{partition}")
        return {"dir": output or ""}
    if stage.command in ("init-model",):
        return {"model": resolve_path(stage.args[0], workdir)} if stage.args else {}
    return {}


# The outputs each command offers to ``${stage.output}`` references.
OUTPUTS: dict[str, tuple[str, ...]] = {
    "demo-data": ("dir",),
    "extract": ("store",),
    "train": ("run", "best", "last"),
    "evaluate": ("dir",),
    "init-model": ("model",),
}


def with_defaults(stage: Stage, workdir: Path) -> Stage:
    """The stage with the defaults a pipeline adds: a train stage's experiment folder is
    ``runs/<stage>`` inside the workdir, so its runs are found again."""
    if stage.command == "train" and "experiment-base-path" not in stage.options:
        stage.options = {**stage.options, "experiment-base-path": f"{RUNS}/{stage.name}"}
    return stage
