"""Runs a pipeline: every stage is checked first, then each one runs in order unless it is
up to date, and the pipeline ends with its results table."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emonet.errors import ConfigError, EmoNetError
from emonet.pipeline.commands import check_stage, stage_argv, stage_outputs, with_defaults
from emonet.pipeline.spec import Pipeline, Stage
from emonet.pipeline.state import PipelineState, fingerprint


class StageFailed(EmoNetError):
    """A stage's command failed (it printed its own error); the pipeline stops with its exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class StageResult:
    """What happened to one stage."""

    name: str
    status: str  # ran | skipped | planned
    reason: str
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)


def _resolver(pipeline: Pipeline, stage: Stage, state: PipelineState) -> Callable[[str], str]:
    def resolve(ref: str) -> str:
        other, output = ref[2:-1].split(".", 1)
        value = (state.get(other) or {}).get("outputs", {}).get(output)
        if not value:
            raise ConfigError(f"{pipeline.path}: stage '{stage.name}': '{ref}' has no value: stage '{other}' made none")
        return value

    return resolve


def _outputs_missing(outputs: dict[str, str]) -> bool:
    return not outputs or any(not Path(p).exists() for p in outputs.values())


def run_pipeline(
    pipeline: Pipeline,
    *,
    force: bool = False,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
) -> list[StageResult]:
    """Run ``pipeline``'s stages in order, skipping those that are up to date.

    Args:
        pipeline: from :func:`emonet.pipeline.load_pipeline`.
        force: run every stage, up to date or not.
        dry_run: check everything and say what would run, run nothing.
        echo: where the one-line stage reports go.

    Returns:
        One StageResult per stage, in run order.

    Raises:
        ConfigError: a stage that does not fit its command (nothing has run then).
        StageFailed: a stage's command failed; the stages before it keep their outputs.
    """
    from emonet.cli.app import main

    stages = [with_defaults(s, pipeline.workdir) for s in pipeline.stages]
    for stage in stages:
        check_stage(pipeline, stage)
    pipeline.workdir.mkdir(parents=True, exist_ok=True)
    state = PipelineState(pipeline.workdir)
    results = []
    for stage in stages:
        upstream = {d: state.get(d) or {} for d in stage.depends_on()}
        fp = fingerprint(stage, pipeline.workdir, upstream)
        reason = "--force" if force else fp.changes(state.get(stage.name))
        if reason is None and _outputs_missing((state.get(stage.name) or {}).get("outputs", {})):
            reason = "its outputs are missing"
        if reason is None:
            echo(f"stage {stage.name}: up to date, skipped")
            results.append(StageResult(stage.name, "skipped", "up to date", outputs=state.get(stage.name)["outputs"]))
            continue
        if dry_run:
            echo(f"stage {stage.name}: would run ({reason})")
            results.append(StageResult(stage.name, "planned", reason))
            continue
        resolve = _resolver(pipeline, stage, state)
        argv = stage_argv(stage, pipeline.workdir, resolve)
        echo(f"stage {stage.name}: runs ({reason}): emonet {' '.join(argv)}")
        t0 = time.perf_counter()
        rc = main(argv)
        if rc != 0:
            raise StageFailed(
                f"{pipeline.path}: stage '{stage.name}' failed (exit {rc}); fix it and re-run: "
                "stages that finished are kept",
                rc,
            )
        outputs = stage_outputs(stage, pipeline.workdir, resolve)
        state.record(stage.name, fp, outputs)
        results.append(StageResult(stage.name, "ran", reason, time.perf_counter() - t0, outputs))
    return results
