"""A pipeline file: named stages, each one emonet command with the same option names as
the CLI, checked before anything runs.

    workdir: demo                       # outputs go here (relative to the current folder)
    stages:
      features:                         # a stage's name: letters, digits, '-' and '_'
        command: extract                # an emonet command
        options:                        # its long option names, without the dashes
          store: features               # relative paths are inside the workdir
          data-path: corpus/data
          tasks: [acted, arousal]       # a list repeats the option
      pretrain:
        command: train
        options:
          store: ${features.store}      # another stage's output: that stage runs first
          tasks: [acted, arousal]
        label: multi-task               # the stage's column in the results table
      folds:
        command: train
        foreach: [1, 2, 3]              # one stage per item: folds[1], folds[2], folds[3]
        options:                        # (emonet.pipeline.foreach)
          store: ${features.store}
          tasks: [emodb-fold${item}]

The outputs a stage offers to others are its command's (``emonet.pipeline.registry.StageCommand.outputs``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emonet.errors import ConfigError
from emonet.pipeline.foreach import REF, expand, foreach_items

STAGE_KEYS = {"command", "options", "args", "label", "after", "foreach", "group"}
TOP_KEYS = {"workdir", "stages", "description"}
DEFAULT_GROUP = r"[-_]fold[-_]?\d+$"  # what a task name loses to name its corpus in the CV table
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass
class Stage:
    """One stage: an emonet command with its options (as in the YAML)."""

    name: str
    command: str
    options: dict[str, Any] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    label: str = ""
    after: list[str] = field(default_factory=list)
    foreach: list[str] | None = None  # the items of a stage not yet expanded
    variable: str = "item"  # the second name of ${item} (foreach: {fold: [...]})
    group: str = DEFAULT_GROUP  # regex removed from a task name to name its corpus (CV table)
    base: str = ""  # an expansion: the foreach stage it comes from ...
    item: str = ""  # ... and its item

    @property
    def folder(self) -> str:
        """The stage's name as a relative folder: ``train/2`` for the expansion ``train[2]``."""
        return f"{self.base}/{self.item}" if self.base else self.name

    def references(self) -> set[str]:
        """Names of the stages whose outputs this stage's values refer to."""
        text = repr(self.options) + repr(self.args)
        return {m.group(1) for m in REF.finditer(text)}

    def depends_on(self) -> list[str]:
        return sorted(self.references() | set(self.after))


@dataclass
class Pipeline:
    """A parsed pipeline: its file, working folder and stages in run order."""

    path: Path
    workdir: Path
    stages: list[Stage]
    description: str = ""

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


def _fail(path: Path, msg: str) -> ConfigError:
    return ConfigError(f"{path}: {msg}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (plain
    YAML keeps the last one, so a second stage of the same name would silently replace the
    first). Keys brought in by a merge (``<<: *common``) may be overridden, as in YAML."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | float | bool | None):
                    continue  # an unhashable key: the structure checks report it
                if key in seen:
                    raise _DuplicateKey(key, key_node.start_mark.line + 1, seen[key])
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


class _DuplicateKey(Exception):
    def __init__(self, key, line: int, first: int):
        super().__init__(key)
        self.key, self.line, self.first = key, line, first


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: pipeline file not found; check the path")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except _DuplicateKey as dup:
        raise _fail(
            path, f"key '{dup.key}' appears twice (lines {dup.first} and {dup.line}); give each stage or key once"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        lines = path.read_text().splitlines()
        quote = mark is not None and mark.line < len(lines) and "${" in lines[mark.line]
        fix = 'quote a value with ${...} inside [...] or {...}: "fold${item}"' if quote else "fix the file"
        raise _fail(path, f"not valid YAML at{where} ({getattr(exc, 'problem', exc)}); {fix}") from None
    if not isinstance(data, dict):
        raise _fail(path, "a pipeline is a mapping with 'stages' (and optionally 'workdir', 'description')")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise _fail(path, f"unknown key '{unknown[0]}' at the top level; keys are {', '.join(sorted(TOP_KEYS))}")
    return data


def _stage(path: Path, name: Any, body: Any) -> Stage:
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(path, f"stage name {name!r} must be letters, digits, '-' or '_'")
    if not isinstance(body, dict) or "command" not in body:
        raise _fail(path, f"stage '{name}' needs a 'command' (and its 'options')")
    unknown = sorted(set(body) - STAGE_KEYS)
    if unknown:
        raise _fail(path, f"stage '{name}': unknown key '{unknown[0]}'; keys are {', '.join(sorted(STAGE_KEYS))}")
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise _fail(path, f"stage '{name}': 'options' must be a mapping of option names to values")
    args = body.get("args") or []
    after = body.get("after") or []
    if isinstance(args, str):
        args = [args]
    if isinstance(after, str):
        after = [after]
    variable, items = "item", None
    if "foreach" in body:
        variable, items = foreach_items(f"{path}: stage '{name}'", body["foreach"])
    group = body.get("group", DEFAULT_GROUP)
    if "group" in body and items is None:
        raise _fail(path, f"stage '{name}': 'group' names the corpora of a cross-validation; it needs 'foreach'")
    try:
        re.compile(str(group))
    except re.error as exc:
        raise _fail(path, f"stage '{name}': 'group' {group!r} is not a regular expression ({exc})") from None
    return Stage(
        name=name,
        command=str(body["command"]),
        options={str(k): v for k, v in options.items()},
        args=[str(a) for a in args],
        label=str(body.get("label") or name),
        after=[str(a) for a in after],
        foreach=items,
        variable=variable,
        group=str(group),
    )


def _order(path: Path, stages: list[Stage]) -> list[Stage]:
    """Stages in file order, except that a stage runs after those it depends on."""
    by_name = {s.name: s for s in stages}
    for s in stages:
        for dep in s.depends_on():
            if dep not in by_name:
                raise _fail(path, f"stage '{s.name}' refers to stage '{dep}', which the file does not define")
    done: list[Stage] = []
    visiting: set[str] = set()

    def visit(s: Stage) -> None:
        if s in done:
            return
        if s.name in visiting:
            raise _fail(path, f"stage '{s.name}' depends on itself through {', '.join(sorted(visiting))}")
        visiting.add(s.name)
        for dep in s.depends_on():
            visit(by_name[dep])
        visiting.discard(s.name)
        done.append(s)

    for s in stages:
        visit(s)
    return done


def _check_labels(path: Path, stages: list[Stage]) -> None:
    """Labels name the columns of the results table: two stages with one label would share a
    column and one stage's numbers would hide the other's."""
    owner: dict[str, str] = {}
    for s in stages:
        if s.label in owner:
            raise _fail(
                path,
                f"stages '{owner[s.label]}' and '{s.name}' have the same label '{s.label}' "
                f"(a label names a column of the results table); give stage '{s.name}' another 'label'",
            )
        owner[s.label] = s.name


def _workdir(path: Path, chosen: Any) -> Path:
    """The workdir as an absolute path (a relative one is taken in the current folder), so
    that paths made from it and from other stages' outputs are joined once."""
    workdir = Path(os.path.abspath(Path(str(chosen)).expanduser()))
    if workdir.exists() and not workdir.is_dir():
        raise _fail(path, f"workdir {workdir} is a file, not a folder; give a folder (--workdir DIR)")
    return workdir


def load_pipeline(path: str | Path, workdir: str | Path | None = None) -> Pipeline:
    """Read and check the structure of a pipeline file (the options of each stage are
    checked against its command by :func:`emonet.pipeline.commands.check_stage`).

    Args:
        path: the YAML file.
        workdir: overrides the file's ``workdir`` (default: the file's name without suffix).

    Returns:
        The pipeline with its stages in run order.

    Raises:
        ConfigError: one line naming the file and the key at fault.
    """
    path = Path(path)
    data = _read_yaml(path)
    raw = data.get("stages")
    if not isinstance(raw, dict) or not raw:
        raise _fail(path, "'stages' must map stage names to stages (command + options)")
    stages = expand(path, [_stage(path, name, body) for name, body in raw.items()])
    _check_labels(path, stages)
    chosen = workdir if workdir is not None else data.get("workdir") or path.stem
    return Pipeline(path, _workdir(path, chosen), _order(path, stages), str(data.get("description") or ""))
