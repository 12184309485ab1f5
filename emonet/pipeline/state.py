"""When a stage is up to date: its options, its inputs on disk and the stages it uses are
what they were when it last ran, and its outputs are still there. The record of each
stage's last run lives in ``WORKDIR/.emonet-pipeline.json``."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from emonet.pipeline.commands import resolve_path
from emonet.pipeline.registry import stage_command
from emonet.pipeline.spec import REF, Stage
from emonet.utils.fs import atomic_write_json, read_json

STATE_FILE = ".emonet-pipeline.json"
STARTED = "_started"  # stage -> what an unfinished run of it started from (not a stage name: those start alnum)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _stat_digest(path: Path) -> str:
    """Sizes and modification times of a file or of every file below a folder."""
    if path.is_file():
        st = path.stat()
        return _digest([st.st_size, st.st_mtime_ns])
    entries = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for f in sorted(files):
            st = os.stat(os.path.join(root, f))
            entries.append([os.path.relpath(os.path.join(root, f), path), st.st_size, st.st_mtime_ns])
    return _digest(entries)


def _through(value: str, outputs: dict[str, dict]) -> str | None:
    """``value`` with its ``${stage.output}`` references replaced by what those stages made
    (``outputs``: stage -> output -> path), or None while one of them has made nothing yet."""
    missing = False

    def sub(m) -> str:
        nonlocal missing
        made = outputs.get(m.group(1), {}).get(m.group(2))
        missing = missing or not made
        return made or ""

    text = REF.sub(sub, value)
    return None if missing else text


def input_paths(stage: Stage, workdir: Path, outputs: dict[str, dict] | None = None) -> list[Path]:
    """The files and folders a stage reads: its path options and arguments other than those
    it writes, also where the path goes through another stage's output (``outputs``: stage
    -> output -> path, from the records of the stages it uses), so that an edit of a csv in
    ``${corpus.dir}/multi-task-setup`` or of a store or checkpoint another stage made is seen."""
    command = stage_command(stage.command)
    values = []
    for key, value in stage.options.items():
        spec = command.options[key]
        if not spec.writes:
            values += [str(v) for v in (value if isinstance(value, list) else [value]) if spec.takes_path(v)]
    specs = list(command.arguments)
    for i, a in enumerate(stage.args):
        spec = specs[min(i, len(specs) - 1)] if specs else None
        if spec is not None and spec.path and not spec.writes:
            values.append(a)
    out = []
    for v in values:
        text = _through(v, outputs or {})
        if text is not None:
            out.append(Path(resolve_path(text, workdir)))
    return [p for p in out if p.exists()]


@dataclass(frozen=True)
class Fingerprint:
    """What decides whether a stage must run again."""

    options: str
    inputs: str
    upstream: str

    def changes(self, old: dict | None) -> str | None:
        """Why the stage must run, or None when nothing changed."""
        if old is None:
            return "never ran"
        for part in ("options", "inputs", "upstream"):
            if old.get(part) != getattr(self, part):
                return {"options": "its options changed", "inputs": "its input files changed"}.get(
                    part, "a stage it uses ran again"
                )
        return None

    def to_dict(self) -> dict:
        return {"options": self.options, "inputs": self.inputs, "upstream": self.upstream}


def fingerprint(stage: Stage, workdir: Path, upstream: dict[str, dict]) -> Fingerprint:
    """The stage's fingerprint, given the records of the stages it depends on."""
    outputs = {name: rec.get("outputs") or {} for name, rec in upstream.items()}
    inputs = {str(p): _stat_digest(p) for p in input_paths(stage, workdir, outputs)}
    return Fingerprint(
        options=_digest([stage.command, stage.options, stage.args]),
        inputs=_digest(inputs),
        upstream=_digest({name: rec.get("run_id") for name, rec in sorted(upstream.items())}),
    )


class PipelineState:
    """The record of every stage's last successful run, saved atomically after each stage."""

    def __init__(self, workdir: Path):
        self.path = Path(workdir) / STATE_FILE
        try:
            self.records: dict[str, dict] = read_json(self.path) if self.path.is_file() else {}
        except ValueError:
            self.records = {}  # an unreadable record only costs a re-run

    def get(self, stage: str) -> dict | None:
        return self.records.get(stage)

    def record(self, stage: str, fp: Fingerprint, outputs: dict[str, str]) -> None:
        run_id = _digest([fp.to_dict(), outputs, os.getpid(), os.times().elapsed])
        self.records[stage] = {**fp.to_dict(), "outputs": outputs, "run_id": run_id}
        self.records.get(STARTED, {}).pop(stage, None)
        self._save()

    def start(self, stage: str, fp: Fingerprint, note: dict) -> None:
        """Note, before a stage runs, what it starts from (a train stage: the run folders
        that exist), so that a stop or a kill leaves enough behind to continue it."""
        self.records.setdefault(STARTED, {})[stage] = {**fp.to_dict(), **note}
        self._save()

    def started(self, stage: str, fp: Fingerprint) -> dict | None:
        """The note of an unfinished start of ``stage`` with this very fingerprint."""
        note = self.records.get(STARTED, {}).get(stage)
        if note is None or any(note.get(k) != v for k, v in fp.to_dict().items()):
            return None
        return note

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path, self.records)
