"""Runs from an initial model (-im) follow the original's table of modes; --copy-task-parts (an
improvement) restores copying a source task's parts; a run configured before the option existed
resumes with the copying it started with."""

from __future__ import annotations

import pytest
import torch

from emonet.cli.app import main
from emonet.cli.train import train_config
from emonet.errors import ConfigError
from emonet.models import load_checkpoint
from emonet.training.config import TrainConfig
from emonet.training.run_dir import read_config

TINY = ["-N", "1", "-nf", "4", "-bs", "8", "-w", "1.0", "-spe", "2", "-e", "1", "-lr", "0.01", "--device", "cpu", "-q"]


def test_the_option_is_off_by_default_and_a_flag(tmp_path):
    base = dict(stores=["s"], tasks=["acted"], experiments=tmp_path)
    assert train_config(base).copy_task_parts is False
    assert train_config({**base, "copy_task_parts": True}).copy_task_parts is True


def test_a_run_configured_before_the_option_resumes_copying(tmp_path):
    now = TrainConfig(stores=["s"], tasks=["acted"], experiments=str(tmp_path), mode="adapters", initial_model="m")
    old = {k: v for k, v in now.to_dict().items() if k != "copy_task_parts"}
    assert TrainConfig.from_run(old).copy_task_parts is True
    assert TrainConfig.from_run(now.to_dict()).copy_task_parts is False
    # a finetune run of then kept the initial model's adapters and tasks: its weights fit no more
    with pytest.raises(ConfigError, match="older emonet whose finetune kept the initial model's adapters"):
        TrainConfig.from_run({**old, "mode": "finetune"})


@pytest.mark.slow  # two real runs of emonet train
def test_cli_finetune_from_an_adapter_model_trains_the_originals_network(small_store, tmp_path, capsys):
    assert main(["train", "-s", str(small_store), "-t", "acted", "arousal", "-ebp", str(tmp_path / "a"), *TINY]) == 0
    (base,) = (tmp_path / "a").iterdir()
    initial = base / "best.safetensors"
    args = ["-s", str(small_store), "-t", "arousal", "valence", "-m", "finetune", "-im", str(initial)]
    assert main(["train", *args, "-ebp", str(tmp_path / "b"), *TINY]) == 0
    (run,) = (tmp_path / "b").iterdir()
    model, meta = load_checkpoint(run / "best.safetensors")
    source, _ = load_checkpoint(initial)
    assert model.config.adapter_type == "none" and list(model.tasks) == ["arousal", "valence"]
    assert set(meta["norm_stats"]) == {"arousal", "valence"}
    assert meta["training"]["mode"] == "finetune"
    # the shared convs: loaded, then trained (moved, but little, from the initial model's)
    after, before = model.state_dict()["cnn.stem.conv.weight"], source.state_dict()["cnn.stem.conv.weight"]
    assert not torch.equal(after, before) and float((after - before).norm()) < 0.5 * float(before.norm())
    assert TrainConfig.from_run(read_config(run)).copy_task_parts is False
    capsys.readouterr()
