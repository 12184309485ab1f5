"""Fixtures for the trainer tests: a real demo corpus extracted into small stores (32 mels,
tiny shards so every partition spans several of them) and tiny model settings."""

from __future__ import annotations

import pytest

TASKS = ["acted", "arousal", "valence"]


def _extract(corpus, store, tasks, extra=()):
    from emonet.cli.app import main

    rc = main(
        [
            "extract",
            "--store",
            str(store),
            "--data-path",
            str(corpus / "data"),
            "--multi-task-setup",
            str(corpus / "multi-task-setup"),
            "--tasks",
            *tasks,
            "--num-mels",
            "32",
            "--frames-per-shard",
            "64",
            "-q",
            *extra,
        ]
    )
    assert rc == 0
    return store


@pytest.fixture(scope="session")
def small_store(demo_corpus, tmp_path_factory):
    """acted, arousal and valence of the demo corpus: zarr, 32 mels, 64-frame shards."""
    return _extract(demo_corpus, tmp_path_factory.mktemp("train-stores") / "demo32", TASKS)


@pytest.fixture(scope="session")
def wds_store(demo_corpus, tmp_path_factory):
    """The acted task as a webdataset store."""
    return _extract(
        demo_corpus, tmp_path_factory.mktemp("train-stores") / "wds32", ["acted"], ["--format", "webdataset"]
    )
