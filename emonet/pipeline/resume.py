"""Train stages that were stopped continue where they stopped. Before a train stage runs,
the pipeline notes the run folders that already exist under its experiment folder; after a
Ctrl-C, a SIGTERM or a ``kill -9``, the next ``emonet run`` finds the one folder that the
stopped run made and continues it with ``emonet train --resume``, instead of starting a new
run beside it. That holds while the stage's options, inputs and upstream stages are unchanged
(the same fingerprint); otherwise the stage trains anew and the partial folder is left as it is."""

from __future__ import annotations

from pathlib import Path

from emonet.pipeline.spec import Stage
from emonet.pipeline.state import Fingerprint, PipelineState

CONFIG = "config.yaml"  # what a run folder holds once ``emonet train`` has set it up
RESULTS = "results.json"  # what it holds once the run has finished


def experiment_base(argv: list[str]) -> Path | None:
    """The experiment folder in a train stage's command line."""
    for i, tok in enumerate(argv[:-1]):
        if tok == "--experiment-base-path":
            return Path(argv[i + 1])
    return None


def _folders(base: Path) -> list[str]:
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def note_start(state: PipelineState, stage: Stage, fp: Fingerprint, argv: list[str]) -> None:
    """Record the run folders that exist before the stage's run makes its own."""
    base = experiment_base(argv)
    if stage.command == "train" and base is not None:
        state.start(stage.name, fp, {"base": str(base), "before": _folders(base)})


def new_run(state: PipelineState, stage: Stage, fp: Fingerprint) -> Path | None:
    """The run folder that the last, unfinished run of the stage made (it holds its config),
    or None when there is no such run or more than one folder could be it."""
    note = state.started(stage.name, fp) if stage.command == "train" else None
    if note is None:
        return None
    base = Path(note["base"])
    made = [base / n for n in _folders(base) if n not in note["before"] and (base / n / CONFIG).is_file()]
    return made[0] if len(made) == 1 else None


def run_outputs(run: Path) -> dict[str, str]:
    """A train stage's outputs for ``${stage.output}`` references."""
    return {"run": str(run), "best": str(run / "best.safetensors"), "last": str(run / "last.safetensors")}


def resume_argv(stage: Stage, run: Path) -> list[str]:
    """``emonet train --resume RUN`` (with --quiet when the stage asks for it): the run's own
    config.yaml holds every other option."""
    return ["train", "--resume", str(run), *(["--quiet"] if stage.options.get("quiet") is True else [])]
