"""A real training run on the demo store, shared by the evaluation tests (tiny model)."""

from __future__ import annotations

import pytest

TASKS = ["acted", "arousal"]


@pytest.fixture(scope="session")
def trained_run(demo_store, tmp_path_factory):
    """(run folder, results) of a two-task run on the demo store (3 stages of 1 epoch of 3 iterations)."""
    from emonet.models import ModelConfig
    from emonet.training import TrainConfig, train

    cfg = TrainConfig(
        stores=[str(demo_store)], tasks=TASKS, experiments=str(tmp_path_factory.mktemp("eval-runs")),
        model=ModelConfig(n_blocks=1, n_filters=4), batch_size=8, window=1.0, epochs=1, patience=5,
        steps_per_epoch=3, learning_rate=0.01,
    )  # fmt: skip
    return train(cfg)
