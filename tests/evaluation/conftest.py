"""A real training run on the demo store, shared by the evaluation tests (tiny model)."""

from __future__ import annotations

import pytest

TASKS = ["acted", "arousal"]


def _train(store, folder, **options):
    from emonet.models import ModelConfig
    from emonet.training import TrainConfig, train

    model = ModelConfig(n_blocks=1, n_filters=4, **options.pop("model", {}))
    cfg = TrainConfig(
        stores=[str(store)], tasks=TASKS, experiments=str(folder), model=model, batch_size=8, epochs=1, patience=5,
        steps_per_epoch=3, learning_rate=0.01, **options,
    )  # fmt: skip
    return train(cfg)


@pytest.fixture(scope="session")
def trained_run(demo_store, tmp_path_factory):
    """(run folder, results) of a two-task run on the demo store (3 stages of 1 epoch of 3 iterations), without
    -w: whole utterances in training and scoring."""
    return _train(demo_store, tmp_path_factory.mktemp("eval-runs"))


@pytest.fixture(scope="session")
def windowed_run(demo_store, tmp_path_factory):
    """The same run with the original's avgpool top and -w 2: random 2 s crops in training,
    one 2 s window per clip scored."""
    return _train(demo_store, tmp_path_factory.mktemp("eval-runs"), window=2.0, model={"classifier": "avgpool"})
