import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory):
    """A small deterministic demo corpus, written once per test session."""
    from emonet.data.demo import generate_demo_corpus

    out = tmp_path_factory.mktemp("demo")
    generate_demo_corpus(out, files_per_task=24, min_seconds=0.5, max_seconds=1.5)
    return out
