"""Data-parallel training with torchrun: 2 CPU processes on gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import emonet
from emonet.data.normalization import task_normalizer
from emonet.data.store_access import partition_index
from emonet.models import load_checkpoint
from emonet.training.evaluate import evaluate_partition
from emonet.training.losses import TaskLoss
from emonet.training.streams import StreamSpec, epoch_batch_count, slice_plan

pytestmark = pytest.mark.slow  # two ranks under torchrun


def test_two_ranks_train_on_disjoint_uneven_shards_and_reduce_metrics_exactly(small_store, tmp_path):
    store = emonet.open_store(small_store)
    index = partition_index(store.partition("arousal", "train"))
    spec = StreamSpec("arousal", batch_size=3, window=32)
    plans = [np.concatenate(slice_plan(index, spec, 0, r, 2)) for r in range(2)]
    assert not set(plans[0]) & set(plans[1]), "ranks read disjoint shards"
    counts = {(epoch_batch_count(index, spec, e, 0, 2), epoch_batch_count(index, spec, e, 1, 2)) for e in range(4)}
    assert any(a != b for a, b in counts), "the fixture must give the ranks uneven shares"

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "emonet"]
    cmd += ["train", "-s", str(small_store), "-t", "valence", "arousal", "-ebp", str(tmp_path), "-N", "1", "-nf", "4"]
    cmd += ["-bs", "3", "-w", "1.0", "-e", "1", "-spe", "4", "--device", "cpu", "-q"]  # 3 stages of 1 epoch
    done = subprocess.run(cmd, env=env, timeout=150, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = tmp_path.iterdir()  # only rank 0 writes, one folder
    results = json.loads((run / "results.json").read_text())
    model, _ = load_checkpoint(run / "best.safetensors")
    for task in ("valence", "arousal"):
        # the all-reduced confusion matrix is the whole partition's, as one process scores it
        cm, _ = evaluate_partition(
            model, store, task, "devel", task_normalizer(store, task, False),  # the run's raw log-mels
            TaskLoss("crossentropy", len(model.tasks[task])), 2,
            torch.device("cpu"),
        )  # fmt: skip
        assert results[task]["devel"]["confusion_matrix"] == cm.tolist()
        assert results[task]["devel"]["n"] == len(store.partition(task, "devel"))


RANKS_DISAGREE = """
import os, sys
from emonet.errors import TrainingError
from emonet.models import ModelConfig
from emonet.training import TrainConfig
from emonet.training.task_schedule import RoundRobin
from emonet.training.trainer import Trainer

tasks = ["valence", "arousal"]
order = tasks if os.environ["RANK"] == "0" else tasks[::-1]  # rank 1 is given another task order
cfg = TrainConfig(stores=[sys.argv[1]], tasks=tasks, experiments=sys.argv[2], batch_size=3, window=1.0, epochs=1,
                  steps_per_epoch=4, device="cpu", model=ModelConfig(n_blocks=1, n_filters=4))
try:
    Trainer(cfg, task_schedule=RoundRobin(order)).run_training()
except TrainingError as exc:
    print(f"rank {os.environ['RANK']} stopped: {exc}", file=sys.stderr, flush=True)
    os._exit(3)
print("trained", flush=True)
"""


def test_ranks_that_train_different_tasks_stop_in_one_line_instead_of_hanging(small_store, tmp_path):
    script = tmp_path / "disagree.py"
    script.write_text(RANKS_DISAGREE)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    proc = subprocess.Popen(
        [*cmd, str(small_store), str(tmp_path / "e")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        pytest.fail("the ranks hung instead of stopping")
    assert proc.returncode != 0 and "trained" not in out, err[-2000:]
    stops = [line for line in err.splitlines() if " stopped: " in line]
    assert stops, err[-2000:]
    for line in stops:  # each rank's error is one line naming what both ranks train
        assert "the ranks disagree at step 0" in line, line
        assert "rank 0 trains task 'valence'" in line and "rank 1 trains task 'arousal'" in line, line
        assert "same task schedule" in line


AVERAGE = """
import torch, torch.distributed as dist
from emonet.training import distributed as dd

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
shapes = [(3, 2, 3, 3), (5,), (1,), (4, 7)]
params = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
for k, p in enumerate(params[:-1]):  # the last has no gradient (a frozen or unused part)
    p.grad = torch.arange(p.numel(), dtype=torch.float32).reshape(p.shape) * (rank + 1) + k
dd.average_gradients(params, world, task=0, names=["a"], step=0)
for k, p in enumerate(params[:-1]):
    want = torch.arange(p.numel(), dtype=torch.float32).reshape(p.shape) * 1.5 + k  # mean of x1 and x2
    assert p.grad.shape == p.shape and torch.equal(p.grad, want), (k, p.grad)
assert params[-1].grad is None
print(f"rank {rank} averaged", flush=True)
dist.destroy_process_group()
"""


def test_gradients_are_averaged_exactly_over_the_ranks(tmp_path):
    script = tmp_path / "average.py"
    script.write_text(AVERAGE)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    done = subprocess.run(cmd, env=env, timeout=120, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rank 0 averaged" in done.stdout and "rank 1 averaged" in done.stdout


@pytest.mark.parametrize(
    ("local_rank", "device", "refused"),
    [("1", "cuda:0", True), ("0", "cuda:0", False), ("1", "cuda:1", False)],
)
def test_nccl_with_two_ranks_on_one_gpu_is_refused_in_one_line_before_joining(monkeypatch, local_rank, device, refused):
    """NCCL answers two ranks on one GPU with a traceback from every rank ("Duplicate GPU
    detected", seen on an H100: bench/README.md): the rank whose --device is not its own GPU
    stops first, in one line, before init_process_group would wait for the others."""
    from emonet.errors import ConfigError
    from emonet.training import distributed as dd

    monkeypatch.delenv("EMONET_DIST_BACKEND", raising=False)
    for k, v in {"RANK": local_rank, "WORLD_SIZE": "2", "LOCAL_RANK": local_rank, "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(k, v)
    joined = []
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda backend: joined.append(backend))
    if refused:
        with pytest.raises(ConfigError, match=r"^--device cuda:0 puts rank 1 on GPU 0, and NCCL refuses") as exc:
            dd.init(torch.device(device))
        assert "\n" not in str(exc.value) and "EMONET_DIST_BACKEND=gloo" in str(exc.value)
        assert joined == []
    else:
        assert dd.init(torch.device(device)) == (int(local_rank), 2) and joined == ["nccl"]
