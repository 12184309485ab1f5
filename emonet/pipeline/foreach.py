"""Stages repeated over a list (``foreach``), e.g. one train stage per cross-validation fold:

    train:
      command: train
      foreach: [1, 2, 3]                  # or {fold: [1, 2, 3]}: then ${fold} too
      options:
        store: ${features.store}
        tasks: [emodb-fold${item}]        # ${item}: this expansion's item, in any string
        run-name: emodb-fold${item}

expands, where the file is read, into the stages ``train[1]``, ``train[2]``, ``train[3]``,
each a stage of its own (its own record, up-to-date check, stop and resume, and its runs in
``runs/train/<item>/``). Later stages refer to one expansion (``${train[2].best}``, or
``${train[${item}].best}`` from a stage with the same items) or, as the items of a list (an
option's list, ``args``), to all of them in order (``tasks: [x, ${train.best}]``);
``after: [train]`` waits for every expansion.

This module knows names, references and substitution only; :mod:`emonet.pipeline.spec`
builds the stages and calls :func:`expand`.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from emonet.errors import ConfigError

ITEM = r"[A-Za-z0-9][A-Za-z0-9_.-]*"  # an item as it appears in a stage name and in a folder name
# ${stage.output} or ${stage[item].output}: another stage's output
REF = re.compile(rf"\$\{{([A-Za-z0-9_-]+(?:\[{ITEM}\])?)\.([A-Za-z0-9_-]+)\}}")
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # ${item}, ${fold}: a foreach stage's variable
DEFAULT_VARIABLE = "item"


def expansion_name(base: str, item: str) -> str:
    return f"{base}[{item}]"


def foreach_items(where: str, value: Any) -> tuple[str, list[str]]:
    """(variable, items) of a stage's ``foreach``: a list of scalars, or a one-key mapping
    ``{name: [...]}`` whose key is a second name of ``${item}``.

    Raises:
        ConfigError: one line (``where``: the file and the stage) for an empty list, an item
            that is not a plain value or not fit for a folder name, or an item given twice.
    """
    variable = DEFAULT_VARIABLE
    if isinstance(value, dict):
        if len(value) != 1 or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(next(iter(value)))):
            raise ConfigError(f"{where}: 'foreach' is a list, or one name with its list ({{fold: [1, 2, 3]}})")
        variable, value = next(iter(value.items()))
    if not isinstance(value, list):
        raise ConfigError(f"{where}: 'foreach' must be a list of items (foreach: [1, 2, 3]), not {value!r}")
    if not value:
        raise ConfigError(f"{where}: 'foreach' is empty; give it at least one item or remove it")
    items: list[str] = []
    for v in value:
        if isinstance(v, dict | list) or v is None or isinstance(v, bool):
            raise ConfigError(f"{where}: 'foreach' item {v!r} must be a plain value (a name or a number)")
        text = str(v)
        if not re.fullmatch(ITEM, text):
            raise ConfigError(
                f"{where}: 'foreach' item {text!r} names a stage and a folder: "
                "letters, digits, '.', '-' or '_', starting with a letter or digit"
            )
        if text in items:
            raise ConfigError(
                f"{where}: 'foreach' gives item {text!r} twice; each item makes one stage, give each once"
            )
        items.append(text)
    return str(variable), items


def _substitute(where: str, value: Any, variables: dict[str, str]) -> Any:
    """``value`` (a string, or a list of them) with ``${item}`` (and the named variable)
    replaced; a variable the stage does not have is an error."""
    if isinstance(value, list):
        return [_substitute(where, v, variables) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group(1) not in variables:
            if not variables:
                raise ConfigError(
                    f"{where}: '{m.group(0)}' is only defined in a stage with 'foreach'; "
                    "add foreach: [...] to the stage or write the value"
                )
            names = ", ".join(f"${{{n}}}" for n in sorted(variables))
            raise ConfigError(f"{where}: '{m.group(0)}' is not defined here; this stage's foreach gives {names}")
        return variables[m.group(1)]

    return VAR.sub(sub, value)


def _instance(path: Path, stage, item: str):
    """One expansion of a foreach stage: its item substituted everywhere."""
    name = expansion_name(stage.name, item)
    where = f"{path}: stage '{name}'"
    variables = {DEFAULT_VARIABLE: item, stage.variable: item}
    label = stage.label
    label = _substitute(where, label, variables) if VAR.search(label) else f"{label}[{item}]"
    return dataclasses.replace(
        stage,
        name=name,
        options={k: _substitute(where, v, variables) for k, v in stage.options.items()},
        args=_substitute(where, stage.args, variables),
        label=label,
        after=_substitute(where, stage.after, variables),
        foreach=None,
        base=stage.name,
        item=item,
    )


def _one_ref(where: str, groups: dict[str, list[str]], m: re.Match) -> None:
    """A reference to one expansion names a foreach stage and one of its items."""
    name = m.group(1)
    if "[" not in name:
        return
    base, item = name[:-1].split("[", 1)
    if base not in groups:
        raise ConfigError(f"{where}: '{m.group(0)}': stage '{base}' has no 'foreach'; write ${{{base}.{m.group(2)}}}")
    if item not in groups[base]:
        raise ConfigError(
            f"{where}: '{m.group(0)}': foreach stage '{base}' has no item {item!r} (items: {', '.join(groups[base])})"
        )


def _spread(where: str, values: list, groups: dict[str, list[str]]) -> list:
    """A list's items, where an item that is exactly ``${stage.output}`` of a foreach stage
    stands for that output of every expansion, in order."""
    out: list = []
    for v in values:
        m = REF.fullmatch(v) if isinstance(v, str) else None
        if m is not None and m.group(1) in groups:
            out += [f"${{{expansion_name(m.group(1), i)}.{m.group(2)}}}" for i in groups[m.group(1)]]
        else:
            out.append(v)
    return out


def _check_refs(where: str, value: Any, groups: dict[str, list[str]]) -> None:
    for m in REF.finditer(repr(value)):
        if m.group(1) in groups:
            raise ConfigError(
                f"{where}: '{m.group(0)}' stands for the outputs of every expansion of foreach stage "
                f"'{m.group(1)}': write it as an item of a list, or name one: "
                f"${{{expansion_name(m.group(1), groups[m.group(1)][0])}.{m.group(2)}}}"
            )
        _one_ref(where, groups, m)


def _resolve_groups(path: Path, stage, groups: dict[str, list[str]]):
    """References to foreach stages: all expansions in lists and ``after``, one where named."""
    where = f"{path}: stage '{stage.name}'"
    options = {k: _spread(where, v, groups) if isinstance(v, list) else v for k, v in stage.options.items()}
    args = _spread(where, stage.args, groups)
    _check_refs(where, (options, args), groups)
    after: list[str] = []
    for a in stage.after:
        after += [expansion_name(a, i) for i in groups[a]] if a in groups else [a]
    return dataclasses.replace(stage, options=options, args=args, after=after)


def expand(path: Path, stages: list) -> list:
    """Every foreach stage replaced, in place, by its expansions; references to foreach
    stages resolved; ``${item}`` outside a foreach stage refused.

    Raises:
        ConfigError: one line naming the file and the stage.
    """
    groups = {s.name: s.foreach for s in stages if s.foreach is not None}
    out = []
    for stage in stages:
        if stage.foreach is None:
            where = f"{path}: stage '{stage.name}'"
            for value in (*stage.options.values(), stage.args, stage.label, stage.after):
                _substitute(where, value, {})
            out.append(stage)
        else:
            out += [_instance(path, stage, item) for item in stage.foreach]
    return [_resolve_groups(path, s, groups) for s in out]
