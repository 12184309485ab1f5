"""Stages are registered commands (:mod:`emonet.pipeline.registry`): their option names, types
and checks are the commands' own (the CLI's long option names), so a pipeline and a command
line use the same words and accept the same values. Everything here is checked before anything
runs; a stage's values are converted by its command's own conversions."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emonet.errors import ConfigError, EmoNetError
from emonet.pipeline.registry import OptionSpec, StageCall, StageCommand, stage_command, stage_commands
from emonet.pipeline.spec import REF, Pipeline, Stage

_OUTSIDE = "relative paths stay inside the workdir: write an absolute path for a file outside it"


def resolve_path(value: str, workdir: Path) -> str:
    if value.startswith("${"):  # a reference a dry run cannot resolve yet: shown as written
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else workdir / p)


def _values(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else [value]
    return [str(v) for v in items]


def _text(value: str, spec: OptionSpec, workdir: Path, resolve: Callable[[str], str]) -> str:
    """One value as the command gets it: references replaced, a path taken inside the workdir."""
    value = REF.sub(lambda m: resolve(m.group(0)), value)
    return resolve_path(value, workdir) if spec.takes_path(value) else value


def _argument_specs(command: StageCommand, n: int) -> list[OptionSpec]:
    """The spec of each of ``n`` positional arguments (the last spec takes the rest)."""
    specs = list(command.arguments)
    return [specs[min(i, len(specs) - 1)] for i in range(n)] if specs else []


def command_line(
    command: StageCommand, options: dict[str, Any], args: list[str], workdir: Path, resolve: Callable[[str], str]
) -> list[str]:
    """The ``emonet`` command line that runs as the stage (only shown, never parsed):
    positional arguments after ``--``, so that no list option can take them as its values."""
    argv = [command.name]
    for key, value in options.items():
        spec = command.options[key]
        if spec.flag:  # check_stage lets only YAML booleans through
            if value is True:
                argv.append(f"--{key}")
            elif spec.off_flag:
                argv.append(spec.off_flag)
            continue
        for v in _values(value):
            argv += [f"--{key}", _text(v, spec, workdir, resolve)]
    specs = _argument_specs(command, len(args))
    positional = [_text(a, spec, workdir, resolve) for a, spec in zip(args, specs, strict=True)]
    return argv + (["--", *positional] if positional else [])


def stage_argv(stage: Stage, workdir: Path, resolve: Callable[[str], str]) -> list[str]:
    """The command line of ``stage``: ``resolve`` replaces ``${stage.output}`` references,
    relative paths are taken inside ``workdir``."""
    return command_line(_command(stage), stage.options, stage.args, workdir, resolve)


def _command(stage: Stage) -> StageCommand:
    command = stage_command(stage.command)
    if command is None:  # check_stage refuses it first
        raise ConfigError(f"stage '{stage.name}': unknown command '{stage.command}'")
    return command


def _convert(where: str, key: str, spec: OptionSpec, value: Any) -> Any:
    """``value`` converted by the command's own conversion; a refusal is one line naming the key."""
    try:
        return spec.convert(value)
    except ValueError as exc:
        message = " ".join(str(exc).split()).rstrip(".")
        named = f"'--{key}'" in message or f"'{key.upper()}'" in message
        raise ConfigError(f"{where}: {message if named else f'{key!r}: {message}'}") from None


def _arguments(where: str, command: StageCommand, args: list[str], workdir, resolve) -> dict[str, Any]:
    """Positional arguments by name, converted; too many or too few is an error."""
    specs = list(command.arguments)
    if len(args) > len(specs) and not (specs and specs[-1].multiple):
        raise ConfigError(
            f"{where}: emonet {command.name} takes {len(specs)} argument(s) in 'args', not {len(args)}; "
            f"see 'emonet {command.name} --help'"
        )
    out: dict[str, Any] = {}
    for i, spec in enumerate(specs):
        given = [_text(a, spec, workdir, resolve) for a in (args[i:] if spec.multiple else args[i : i + 1])]
        if not given:
            if spec.required:
                raise ConfigError(f"{where}: emonet {command.name} needs its argument {spec.name.upper()} in 'args'")
            continue
        out[spec.name] = _convert(where, spec.name, spec, given if spec.multiple else given[0])
    return out


def stage_call(pipeline: Pipeline, stage: Stage, options: dict[str, Any], args: list[str], resolve) -> StageCall:
    """The stage's ``options`` and ``args`` converted by its command's own conversions
    (``resolve`` replaces references); a required option left out is an error.

    Raises:
        ConfigError: one line naming the file, the stage and the option.
    """
    command = _command(stage)
    where = f"{pipeline.path}: stage '{stage.name}'"
    converted = {}
    for key, value in options.items():
        spec = command.options[key]
        if not spec.flag:
            texts = [_text(v, spec, pipeline.workdir, resolve) for v in _values(value)]
            value = texts if spec.multiple else texts[0]
        converted[key] = _convert(where, key, spec, value)
    missing = [key for key, spec in command.options.items() if spec.required and key not in options]
    if missing:
        raise ConfigError(f"{where}: emonet {command.name} needs the option '{missing[0]}'; add it to 'options'")
    return StageCall(converted, _arguments(where, command, args, pipeline.workdir, resolve))


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


def _check_values(pipeline: Pipeline, stage: Stage, command: StageCommand) -> None:
    """Flags take YAML booleans only; every other option a value; no path leaves the workdir."""
    where = f"{pipeline.path}: stage '{stage.name}'"
    for key, value in stage.options.items():
        spec = command.options[key]
        if spec.flag:
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: '{key}' is a flag: write {key}: true or {key}: false (not {value!r})")
            continue
        if value is None or value == []:
            raise ConfigError(f"{where}: '{key}' has no value; give one or remove the key")
        if isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, dict | list) for v in value)):
            raise ConfigError(f"{where}: '{key}' must be a value or a list of values, not a mapping")
        if isinstance(value, list) and len(value) > 1 and not spec.multiple:
            raise ConfigError(f"{where}: '{key}' takes one value, not a list of {len(value)}; give one")
        for v in _values(value):
            if spec.takes_path(v) and leaves_workdir(v, pipeline.workdir):
                raise ConfigError(f"{where}: '{key}: {v}' leaves the workdir through '..'; {_OUTSIDE}")
    if command.resume_option is not None and command.resume_option in stage.options:
        raise ConfigError(
            f"{where}: '{command.resume_option}' is not a pipeline option; re-running the pipeline resumes the stage"
        )
    for a in stage.args:
        if leaves_workdir(a, pipeline.workdir):
            raise ConfigError(f"{where}: argument '{a}' leaves the workdir through '..'; {_OUTSIDE}")


def _known_command(pipeline: Pipeline, stage: Stage) -> StageCommand:
    command = stage_command(stage.command)
    if command is not None:
        return command
    known = sorted(stage_commands())
    close = difflib.get_close_matches(stage.command, known, n=1)
    if close:
        hint = f"did you mean '{close[0]}'?"
    elif known:
        hint = f"commands: {', '.join(known)}"
    else:  # a Python caller that has not registered the emonet commands
        hint = "no commands are registered: import emonet.cli.stages and call register_stage_commands() first"
    raise ConfigError(f"{pipeline.path}: stage '{stage.name}': unknown command '{stage.command}'; {hint}")


def check_stage(pipeline: Pipeline, stage: Stage) -> None:
    """Checks a stage against its command without running anything: the command exists,
    every option is one of its long names, flags are booleans, no path leaves the workdir,
    references name outputs the other stage offers, and every value converts (types, choices,
    ranges) as on the command line.

    Raises:
        ConfigError: one line naming the file, the stage and the key.
    """
    command = _known_command(pipeline, stage)
    for key in stage.options:
        if key not in command.options:
            raise _unknown(pipeline, stage, key, sorted(command.options))
    _check_values(pipeline, stage, command)
    for ref in REF.finditer(repr(stage.options) + repr(stage.args)):
        other, output = ref.group(1), ref.group(2)
        offered = _known_command(pipeline, pipeline.stage(other)).outputs
        if output not in offered:
            raise ConfigError(
                f"{pipeline.path}: stage '{stage.name}': '${{{other}.{output}}}': stage '{other}' offers "
                f"{', '.join(offered) or 'no outputs'}"
            )
    added = {k: v.format(stage=stage.folder) for k, v in command.defaults.items() if k not in stage.options}
    options = {**stage.options, **added}  # as the stage will run (with_defaults), without changing it
    call = stage_call(pipeline, stage, options, stage.args, lambda ref: f"{pipeline.workdir}/{ref[2:-1]}")
    if command.check is not None:
        try:
            command.check(call)
        except EmoNetError as exc:
            raise ConfigError(f"{pipeline.path}: stage '{stage.name}': {exc}") from exc


def with_defaults(stage: Stage) -> Stage:
    """The stage with the options a pipeline adds where the stage leaves them out (a train
    stage's experiment folder is ``runs/<stage>`` inside the workdir, so its runs are found again)."""
    command = stage_command(stage.command)
    added = {k: v.format(stage=stage.folder) for k, v in (command.defaults if command else {}).items()}
    stage.options = {**stage.options, **{k: v for k, v in added.items() if k not in stage.options}}
    return stage
