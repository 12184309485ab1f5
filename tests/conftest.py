import os

import pytest

from tests.helpers import DEMO_TASKS

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory):
    """A small deterministic demo corpus, written once per test session."""
    from emonet.data.demo import generate_demo_corpus

    out = tmp_path_factory.mktemp("demo")
    generate_demo_corpus(out, files_per_task=24, min_seconds=0.5, max_seconds=1.5)
    return out


@pytest.fixture(scope="session")
def demo_store(demo_corpus, tmp_path_factory):
    """The demo corpus extracted once (zarr, small shards so reads cross shard edges)."""
    from emonet.cli.app import main

    store = tmp_path_factory.mktemp("stores") / "demo"
    rc = main(
        [
            "extract",
            "--store",
            str(store),
            "--data-path",
            str(demo_corpus / "data"),
            "--multi-task-setup",
            str(demo_corpus / "multi-task-setup"),
            "--tasks",
            *DEMO_TASKS,
            "--frames-per-shard",
            "512",
            "-q",
        ]
    )
    assert rc == 0
    return store
