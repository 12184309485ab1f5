"""Runs a pipeline: every stage is checked first, then each one runs in order unless it is
up to date, and the pipeline ends with its results table."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emonet.errors import ConfigError, EmoNetError
from emonet.pipeline import resume
from emonet.pipeline.commands import check_stage, command_line, stage_call, with_defaults
from emonet.pipeline.lock import workdir_lock
from emonet.pipeline.registry import StageCommand, stage_command
from emonet.pipeline.spec import Pipeline, Stage
from emonet.pipeline.state import PipelineState, fingerprint
from emonet.utils.fs import filesystem_errors

STOPPED = (130, 143)  # the exit codes of a stop: Ctrl-C, SIGTERM


class StageFailed(EmoNetError):
    """A stage failed: the message names the stage and says what to do; the error of its
    command is ``__cause__`` (its type and exit code are kept: ``exit_code`` is its own)."""

    def __init__(self, message: str, exit_code: int = 2, stage: str = ""):
        super().__init__(message)
        self.exit_code = exit_code
        self.stage = stage


class StageStopped(StageFailed):
    """A stage was stopped (Ctrl-C, SIGTERM): exit 130 or 143. What it finished is kept; a
    stopped train stage continues its run on the next call."""


@dataclass
class StageResult:
    """What happened to one stage."""

    name: str
    status: str  # ran | skipped | planned
    reason: str
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)


def _resolver(
    pipeline: Pipeline, stage: Stage, state: PipelineState, keep_unknown: bool = False
) -> Callable[[str], str]:
    def resolve(ref: str) -> str:
        other, output = ref[2:-1].split(".", 1)
        value = (state.get(other) or {}).get("outputs", {}).get(output)
        if not value and keep_unknown:
            return ref
        if not value:
            raise ConfigError(f"{pipeline.path}: stage '{stage.name}': '{ref}' has no value: stage '{other}' made none")
        return value

    return resolve


def _outputs_missing(outputs: dict[str, str]) -> bool:
    return not outputs or any(not Path(p).exists() for p in outputs.values())


def _reason(stage: Stage, fp, state: PipelineState, force: bool) -> str | None:
    """Why the stage must run, or None when it is up to date."""
    reason = "--force" if force else fp.changes(state.get(stage.name))
    if reason is None and _outputs_missing((state.get(stage.name) or {}).get("outputs", {})):
        reason = "its outputs are missing"
    return reason


def _failed(pipeline: Pipeline, stage: Stage, exc: BaseException, run: Path | None) -> StageFailed:
    """The pipeline's one line for a stage that failed or was stopped (``exc``: its error)."""
    code = getattr(exc, "exit_code", 130 if isinstance(exc, KeyboardInterrupt) else 2)
    if isinstance(exc, KeyboardInterrupt) or code in STOPPED:  # the command kept what it finished
        what = f"its run {run} continues" if run is not None else "it runs again"
        message = f"{pipeline.path}: stage '{stage.name}' was stopped; re-run the pipeline and {what}"
        return StageStopped(message, code if code in STOPPED else 130, stage.name)
    return StageFailed(
        f"{pipeline.path}: stage '{stage.name}' failed: {exc}; fix it and re-run: stages that finished are kept",
        code,
        stage.name,
    )


def _stage_options(command: StageCommand, stage: Stage, fp, state: PipelineState):
    """(options, args, the run it continues or None): a stopped stage continues its run."""
    run = resume.stopped_run(state, command, stage, fp)
    if run is not None:
        return resume.resume_options(command, stage, run), [], run
    return stage.options, stage.args, None


def _run_stage(pipeline: Pipeline, stage: Stage, fp, state: PipelineState, reason: str, echo) -> StageResult:
    """Run one stage's command (a stopped train stage: continue its run) and record what it made."""
    command = stage_command(stage.command)
    resolve = _resolver(pipeline, stage, state)
    options, args, run = _stage_options(command, stage, fp, state)
    line = "emonet " + " ".join(command_line(command, options, args, pipeline.workdir, resolve))
    if run is not None and (run / resume.RESULTS).is_file():  # it finished, but was stopped before its record
        echo(f"stage {stage.name}: its run {run} finished before the pipeline stopped; kept")
    elif run is not None:
        echo(f"stage {stage.name}: resumes its run, stopped before it finished: {line}")
    else:
        echo(f"stage {stage.name}: runs ({reason}): {line}")
    call = stage_call(pipeline, stage, options, args, resolve)
    started: list[Path] = [run] if run is not None else []

    def note(folder: Path) -> None:
        started[:] = [Path(folder)]
        with filesystem_errors(state.path):
            resume.note_run(state, stage, fp, Path(folder))

    call.started = note
    t0 = time.perf_counter()
    try:
        outputs = command.run(call)
    except (EmoNetError, KeyboardInterrupt) as exc:
        raise _failed(pipeline, stage, exc, started[0] if started else None) from exc
    with filesystem_errors(state.path):
        state.record(stage.name, fp, outputs)
    return StageResult(stage.name, "ran", reason, time.perf_counter() - t0, outputs)


def _plan(pipeline: Pipeline, stage: Stage, fp, state: PipelineState, reason: str, echo) -> StageResult:
    """What a dry run says of a stage that would run: the command line it would run
    (references to stages that have not run yet shown as they are written)."""
    command = stage_command(stage.command)
    options, args, _run = _stage_options(command, stage, fp, state)
    resolve = _resolver(pipeline, stage, state, keep_unknown=True)
    argv = command_line(command, options, args, pipeline.workdir, resolve)
    echo(f"stage {stage.name}: would run ({reason}): emonet {' '.join(argv)}")
    return StageResult(stage.name, "planned", reason)


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
        dry_run: check everything and say what would run; write nothing, not even the workdir.
        echo: where the one-line stage reports go.

    Returns:
        One StageResult per stage, in run order.

    Raises:
        ConfigError: a stage that does not fit its command (nothing has run then).
        WorkdirBusy: another ``emonet run`` uses the workdir (nothing has run then).
        StageFailed: a stage's command failed (its error, with its type and exit code, is
            ``__cause__``); the stages before it keep their outputs.
        StageStopped: a stage was stopped (Ctrl-C, SIGTERM: exit 130, 143); a stopped train
            stage continues its run on the next call.
    """
    stages = [with_defaults(s) for s in pipeline.stages]
    for stage in stages:
        check_stage(pipeline, stage)
    if dry_run:
        return _run_stages(pipeline, stages, force, True, echo)
    with workdir_lock(pipeline.workdir, pipeline.path):
        return _run_stages(pipeline, stages, force, False, echo)


def _run_stages(pipeline: Pipeline, stages: list[Stage], force: bool, dry_run: bool, echo) -> list[StageResult]:
    state = PipelineState(pipeline.workdir)
    results = []
    for stage in stages:
        upstream = {d: state.get(d) or {} for d in stage.depends_on()}
        fp = fingerprint(stage, pipeline.workdir, upstream)
        reason = _reason(stage, fp, state, force)
        if reason is None:
            echo(f"stage {stage.name}: up to date, skipped")
            results.append(StageResult(stage.name, "skipped", "up to date", outputs=state.get(stage.name)["outputs"]))
        elif dry_run:
            results.append(_plan(pipeline, stage, fp, state, reason, echo))
        else:
            results.append(_run_stage(pipeline, stage, fp, state, reason, echo))
    return results
