"""The commands a pipeline stage can run, with the schema of their options: registered by the
layer that owns the commands (``emonet.cli.stages`` registers the emonet commands, with the
CLI's long option names and value conversions), so that the pipeline checks a stage's options
before anything runs and then calls the command's Python function, without a command line.

A command's ``run`` gets the stage's values already converted (paths made absolute inside the
workdir) and returns what the stage made (output name -> path), for the references of later
stages (``${stage.output}``) and the up-to-date check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _no_conversion(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class OptionSpec:
    """One option of a command (or one positional argument, where ``name`` is set).

    ``convert`` turns the YAML value (a string; a list of strings for ``multiple``; a bool for
    a ``flag``) into the value the command takes, as the command line would, or raises
    ValueError with a one-line message."""

    convert: Callable[[Any], Any] = _no_conversion
    multiple: bool = False
    flag: bool = False
    path: bool = False  # takes paths: relative ones are taken inside the workdir
    default: Any = None
    choices: tuple[str, ...] = ()
    required: bool = False
    writes: bool = False  # names what the stage writes (not an input of the up-to-date check)
    off_flag: str | None = None  # how a command line turns the flag off (``--no-x``), if it can
    name: str = ""  # a positional argument's name (options are named by their key)
    path_suffixes: tuple[str, ...] = ()  # takes a path only when the value ends so (e.g. a map inline or a file)

    def takes_path(self, value: Any) -> bool:
        """Whether ``value`` is a path: always for a ``path`` option, by its ending with ``path_suffixes``."""
        return self.path or (bool(self.path_suffixes) and str(value).lower().endswith(self.path_suffixes))


@dataclass
class StageCall:
    """What a command's ``run`` gets: the stage's options (long option name -> converted value),
    its positional arguments (argument name -> converted value), and ``started``, which a
    command that can be continued after a stop calls with the folder it continues from, as
    soon as that folder exists and before the long work starts."""

    options: dict[str, Any] = field(default_factory=dict)
    arguments: dict[str, Any] = field(default_factory=dict)
    started: Callable[[Path], None] = lambda _folder: None


@dataclass(frozen=True)
class StageCommand:
    """A command a stage can name.

    Attributes:
        name: the stage's ``command``.
        options: long option name (no dashes) -> its spec.
        arguments: the positional arguments in order (the last may take many values).
        run: runs the command; returns output name -> path.
        outputs: the outputs ``run`` offers to ``${stage.output}`` references.
        defaults: options a pipeline adds when a stage leaves them out (``{stage}`` stands for
            the stage's name), e.g. a train stage's own experiment folder.
        resume_option: the option that continues a stopped run in the folder it reported
            through ``StageCall.started`` (None: a stopped stage runs again from the start).
        resume_keeps: options of the stage that a resumed run keeps (the rest is the run's own).
        check: checks the stage's converted values together as the command will (e.g. a train
            stage's whole TrainConfig) before any stage runs; raises a one-line EmoNetError.
    """

    name: str
    options: dict[str, OptionSpec]
    arguments: tuple[OptionSpec, ...]
    run: Callable[[StageCall], dict[str, str]]
    outputs: tuple[str, ...] = ()
    defaults: dict[str, str] = field(default_factory=dict)
    resume_option: str | None = None
    resume_keeps: tuple[str, ...] = ()
    check: Callable[[StageCall], None] | None = None


_COMMANDS: dict[str, StageCommand] = {}


def register_stage(command: StageCommand) -> None:
    """Make ``command`` available to pipeline stages (a second registration of a name replaces the first)."""
    _COMMANDS[command.name] = command


def stage_command(name: str) -> StageCommand | None:
    """The registered command called ``name``, or None."""
    return _COMMANDS.get(name)


def stage_commands() -> dict[str, StageCommand]:
    """Every registered command, by name."""
    return dict(_COMMANDS)
