"""A run killed with SIGKILL at any moment resumes on re-run and ends byte-for-byte equal
to an uninterrupted run; a store never shows a partition that is not complete."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emonet.cli.app import main
from emonet.store import open_store
from emonet.store.content import PartitionContent
from emonet.store.staging import BlockRecord, StagedPartition
from emonet.store.zarr_backend import ZarrLayout
from tests.helpers import DEMO_TASKS, SLOW_CLI, tree_digest

pytestmark = pytest.mark.slow  # extraction killed with kill -9 and resumed

SHARD = 32  # frames per shard: many blocks per partition


def _args(store: Path, corpus: Path, fmt: str) -> list[str]:
    return [
        "extract",
        "--store",
        str(store),
        "-dp",
        str(corpus / "data"),
        "--multi-task-setup",
        str(corpus / "multi-task-setup"),
        "--tasks",
        *DEMO_TASKS,
        "--format",
        fmt,
        "--frames-per-shard",
        str(SHARD),
        "--workers",
        "2",
        "-q",
    ]


def _progress(store: Path) -> dict[tuple[str, str], int]:
    out = {}
    for f in (store / ".staging").glob("*/*/progress.json"):
        try:
            out[(f.parent.parent.name, f.parent.name)] = json.loads(f.read_text())["blocks_done"]
        except (ValueError, KeyError, OSError):
            pass
    return out


def _run_and_kill(args: list[str], store: Path, when, timeout: float = 60.0) -> tuple[str, str]:
    proc = subprocess.Popen([sys.executable, "-c", SLOW_CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            hit = when(_progress(store))
            if hit:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return hit
            if proc.poll() is not None:
                pytest.fail(f"extraction ended before the kill point: {proc.stderr.read().decode()}")
            time.sleep(0.005)
        pytest.fail("kill point never reached")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("fmt", ["zarr", "webdataset"])
def test_kill_9_and_resume_equals_uninterrupted_run(tmp_path, demo_corpus, fmt, capsys):
    ref, store = tmp_path / "ref", tmp_path / "killed"
    assert main(_args(ref, demo_corpus, fmt)) == 0

    # kill 1: in the middle of the first partition
    first = _run_and_kill(
        _args(store, demo_corpus, fmt), store, lambda p: next((k for k, v in p.items() if v >= 3), None)
    )
    s = open_store(store)
    # never looks complete when it is not (a task appears with its first complete partition)
    assert first[0] not in s.tasks or first[1] not in s.partitions(first[0])
    # kill 2: in the middle of another partition, after resuming the first
    second = _run_and_kill(
        _args(store, demo_corpus, fmt),
        store,
        lambda p: next((k for k, v in p.items() if k != first and v >= 2), None),
    )
    assert second != first
    assert first[1] in open_store(store).partitions(first[0])
    assert second[1] not in open_store(store).partitions(second[0]) if second[0] in open_store(store).tasks else True

    capsys.readouterr()
    assert main(_args(store, demo_corpus, fmt)[:-1]) == 0
    assert "resumed" in capsys.readouterr().out
    assert not (store / ".staging").exists()
    assert tree_digest(store, exclude=()) == tree_digest(ref, exclude=())


def test_stale_staging_from_another_plan_is_discarded(tmp_path):
    """A staging folder left by a run with other inputs is not resumed into this one."""

    def content(frames):
        return PartitionContent(
            "t",
            "train",
            [f"f{i}" for i in range(len(frames))],
            [0] * len(frames),
            frames,
            [1.0] * len(frames),
            n_mels=4,
            paths=[f"/x/f{i}.wav" for i in range(len(frames))],
        )

    stage = tmp_path / "stage"
    lay = ZarrLayout(frames_per_shard=8, frames_per_chunk=8)
    sp = StagedPartition(stage, content([10, 10, 10]), lay, ["a"])
    pending = sp.prepare()
    assert list(pending) == [0, 1, 2, 3] and [it.index for it in sp.job(1).items] == [0, 1]
    sp.record(0, BlockRecord(8, [0.0] * 4, [0.0] * 4, 0))
    assert StagedPartition(stage, content([10, 10, 10]), lay, ["a"]).blocks_done == 1  # same plan: resumes
    other = StagedPartition(stage, content([10, 12, 10]), lay, ["a"])
    assert other.blocks_done == -1 and list(other.prepare())[0] == 0
