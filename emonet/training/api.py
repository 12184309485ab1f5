"""``train(config)``: the Python entry point a notebook calls (the CLI is a thin layer over it)."""

from __future__ import annotations

from pathlib import Path

from emonet.training.config import TrainConfig
from emonet.training.progress import Progress


def train(config: TrainConfig, *, progress: Progress | None = None) -> tuple[Path, dict]:
    """Train a new run described by ``config``.

    Args:
        config: the run's TrainConfig (stores, tasks, experiments folder, options).
        progress: optional reporter of steps and epochs.

    Returns:
        (the run folder, results: task -> partition -> metrics of the best weights).
    """
    from emonet.training.trainer import Trainer

    trainer = Trainer(config, progress=progress)
    return trainer.run_dir, trainer.run_training()


def resume(run_dir: str | Path, *, progress: Progress | None = None) -> tuple[Path, dict]:
    """Continue the run in ``run_dir`` from its last finished epoch, with its saved config.

    Returns:
        (the run folder, results) as :func:`train`.
    """
    from emonet.training.run_dir import read_config
    from emonet.training.trainer import Trainer

    run_dir = Path(run_dir)
    config = TrainConfig.from_dict(read_config(run_dir))
    trainer = Trainer(config, resume=run_dir, progress=progress)
    return trainer.run_dir, trainer.run_training()
