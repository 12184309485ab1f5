"""``train(config)``: the Python entry point a notebook calls (the CLI is a thin layer over it)."""

from __future__ import annotations

from pathlib import Path

from emonet.errors import TrainingError
from emonet.training.callbacks import Callback
from emonet.training.config import TrainConfig
from emonet.training.progress import Progress
from emonet.training.run_dir import RESULTS, finished, read_config
from emonet.training.trainer import Trainer
from emonet.utils.fs import filesystem_errors, read_json


def train(
    config: TrainConfig, *, progress: Progress | None = None, callbacks: list[Callback] | None = None
) -> tuple[Path, dict]:
    """Train a new run described by ``config``.

    Args:
        config: the run's TrainConfig (stores, tasks, experiments folder, options).
        progress: optional reporter of steps and epochs.
        callbacks: the user's own callbacks (emonet.training.callbacks.Callback).

    Returns:
        (the run folder, results: task -> partition -> metrics of the best weights).
    """
    trainer = Trainer(config, progress=progress, callbacks=callbacks)
    return trainer.run_dir, trainer.run_training()


def resume(
    run_dir: str | Path, *, progress: Progress | None = None, callbacks: list[Callback] | None = None
) -> tuple[Path, dict]:
    """Continue the run in ``run_dir`` from its last finished epoch, with its saved config.

    A finished run (its results.json is there) is not trained or scored again: its stored
    results come back unchanged and ``progress`` gets a note saying so. ``callbacks`` get
    back the state the run saved for them (by name); one given only now starts fresh.

    Returns:
        (the run folder, results) as :func:`train`.
    """
    run_dir = Path(run_dir)
    if finished(run_dir):
        with filesystem_errors(run_dir / RESULTS):
            try:
                results = read_json(run_dir / RESULTS)
            except ValueError:
                raise TrainingError(
                    f"{run_dir / RESULTS}: unreadable (not JSON); the run's results are damaged"
                ) from None
        if progress is not None:
            progress.note(f"{run_dir}: this run is finished (its {RESULTS} is there); nothing to resume")
        return run_dir, results
    config = TrainConfig.from_run(read_config(run_dir))
    trainer = Trainer(config, resume=run_dir, progress=progress, callbacks=callbacks)
    return trainer.run_dir, trainer.run_training()
