"""Stages that were stopped continue where they stopped. A command that can be continued (a
registered command with a ``resume_option``: ``emonet train``) reports its run folder as soon
as it has made it, before the long work starts; the pipeline notes that folder at once. After
a Ctrl-C, a SIGTERM or a ``kill -9``, the next ``emonet run`` continues that run (``emonet
train --resume RUN``) instead of starting a new run beside it. That holds while the stage's
options, inputs and upstream stages are unchanged (the same fingerprint); otherwise the stage
runs anew and the partial folder is left as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emonet.pipeline.registry import StageCommand
from emonet.pipeline.spec import Stage
from emonet.pipeline.state import Fingerprint, PipelineState

CONFIG = "config.yaml"  # what a run folder holds once ``emonet train`` has set it up
RESULTS = "results.json"  # what it holds once the run has finished


def note_run(state: PipelineState, stage: Stage, fp: Fingerprint, run: Path) -> None:
    """Record the folder a stage's run continues from, before it does its work."""
    state.start(stage.name, fp, {"run": str(run)})


def stopped_run(state: PipelineState, command: StageCommand, stage: Stage, fp: Fingerprint) -> Path | None:
    """The run folder of the last, unfinished run of the stage (it holds its config), or None
    when the stage did not start one with this fingerprint or cannot be continued."""
    note = state.started(stage.name, fp) if command.resume_option is not None else None
    run = Path(note["run"]) if note is not None and note.get("run") else None
    return run if run is not None and (run / CONFIG).is_file() else None


def resume_options(command: StageCommand, stage: Stage, run: Path) -> dict[str, Any]:
    """The options that continue ``run`` (``--resume RUN``, with those the stage keeps, such as
    --quiet): the run's own config holds every other option."""
    kept = {k: stage.options[k] for k in command.resume_keeps if k in stage.options}
    return {command.resume_option: str(run), **kept}
