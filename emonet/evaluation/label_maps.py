"""Label maps of cross-corpus scoring: the labels of a scored partition (another corpus's task)
mapped onto the classes of the head that scores it.

A map is given inline, ``LABEL=CLASS[,LABEL=CLASS...]`` (e.g. ``anger=angry,joy=happy``), or
as a file: ``.json`` (an object ``{"LABEL": "CLASS", ...}``) or ``.csv`` (rows ``LABEL,CLASS``;
an optional first row ``label,class`` is a header). Several labels may map to one class; a
label may not be mapped twice. A label that is itself one of the head's classes maps to that
class unless the map says otherwise, so a map names only the labels whose names differ.

Every problem is one line (:class:`~emonet.errors.ConfigError`) naming the option or file and
the fix: an empty map, a label mapped twice, a class the head does not have, a malformed file,
and labels of the scored partition that map to nothing (unless they are dropped on request).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from emonet.errors import ConfigError

OPTION = "--label-map"
FORMAT = "LABEL=CLASS[,LABEL=CLASS...] or a .json/.csv file"


def _add(mapping: dict[str, str], label: str, cls: str, where: str) -> None:
    label, cls = label.strip(), cls.strip()
    if not label or not cls:
        raise ConfigError(f"{where}: an empty label or class in {label!r}={cls!r}; write {FORMAT}")
    if label in mapping:
        raise ConfigError(f"{where}: label {label!r} is mapped twice ({mapping[label]!r} and {cls!r}); map it once")
    mapping[label] = cls


def _from_json(text: str, where: str) -> dict[str, str]:
    mapping: dict[str, str] = {}

    def pairs(items):
        for k, v in items:
            if not isinstance(v, str):
                raise ConfigError(f'{where}: the class of {k!r} is {v!r}, not a string; write {{"LABEL": "CLASS"}}')
            _add(mapping, k, v, where)
        return mapping

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f'{where}: not valid JSON ({exc.msg}, line {exc.lineno}); write {{"LABEL": "CLASS"}}'
        ) from None
    if data is not mapping:  # a list, a string, a number: not an object of labels
        raise ConfigError(f'{where}: not a JSON object of labels; write {{"LABEL": "CLASS", ...}}')
    return mapping


def _from_csv(text: str, where: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if rows and [c.strip().lower() for c in rows[0]] == ["label", "class"]:
        rows = rows[1:]
    for n, row in enumerate(rows, 1):
        if len(row) != 2:
            raise ConfigError(f"{where}: row {n} has {len(row)} columns ({','.join(row)}); write rows LABEL,CLASS")
        _add(mapping, row[0], row[1], where)
    return mapping


def _inline(text: str) -> dict[str, str]:
    where = f"{OPTION} {text!r}"
    mapping: dict[str, str] = {}
    for part in (p for p in text.split(",") if p.strip()):
        if part.count("=") != 1:
            raise ConfigError(f"{where}: {part.strip()!r} is not LABEL=CLASS; write {FORMAT}")
        _add(mapping, *part.split("="), where)
    return mapping


def parse_label_map(spec: str | Path | dict) -> dict[str, str]:
    """A label map from an inline spec, a ``.json``/``.csv`` file, or a dict (checked the same).

    Raises:
        ConfigError: an empty map, a label mapped twice, a malformed or unreadable file.
    """
    if isinstance(spec, dict):
        where, mapping = OPTION, {}
        for k, v in spec.items():
            _add(mapping, str(k), str(v), where)
    elif str(spec).lower().endswith((".json", ".csv")):
        path = Path(spec)
        where = f"{OPTION} {path}"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{where}: no such file; give an existing .json or .csv label map") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: cannot be read ({exc.__class__.__name__}); give a UTF-8 text file") from None
        mapping = _from_json(text, where) if path.suffix.lower() == ".json" else _from_csv(text, where)
    else:
        where, mapping = f"{OPTION} {str(spec)!r}", _inline(str(spec))
    if not mapping:
        raise ConfigError(f"{where}: the map is empty; map at least one label: {FORMAT}")
    return mapping


def class_ids(
    mapping: dict[str, str] | None,
    labels: list[str],
    classes: list[str],
    head: str,
    task: str,
    drop_unmapped: bool = False,
) -> np.ndarray:
    """Scored label id -> the head's class id, with one more entry that maps -1 (unlabelled)
    to -1; a dropped (unmapped) label maps to -2.

    Args:
        mapping: label -> head class (None: the identity of equal names only).
        labels: the scored task's labels (its label ids index them).
        classes: the head's classes.
        head, task: their names, for the messages.
        drop_unmapped: map the labels that map to nothing to -2 instead of refusing them.

    Raises:
        ConfigError: the map names a class the head lacks, or a label maps to nothing.
    """
    mapping = mapping or {}
    unknown = sorted({c for c in mapping.values() if c not in classes})
    if unknown:
        raise ConfigError(
            f"{OPTION}: {', '.join(map(repr, unknown))} is not a class of head {head!r} "
            f"(its classes: {', '.join(classes)}); map to those"
        )
    target = [mapping.get(lb, lb if lb in classes else None) for lb in labels]
    unmapped = [lb for lb, c in zip(labels, target, strict=True) if c is None]
    if unmapped and not drop_unmapped:
        raise ConfigError(
            f"task {task!r} has labels {', '.join(unmapped)} that map to no class of head {head!r} "
            f"({', '.join(classes)}); map them with {OPTION} LABEL=CLASS or leave them out with --drop-unmapped"
        )
    return np.asarray([classes.index(c) if c is not None else -2 for c in target] + [-1], np.int64)
