"""The loss and optimiser registries: every registered one takes a real training step on a real
store, and a loss registered from outside trains through the Python API with nothing else changed."""

from __future__ import annotations

import math

import pytest
import torch

import emonet
from emonet.errors import ConfigError
from emonet.models import ModelConfig, build_model
from emonet.training import TrainConfig, batches, train
from emonet.training.losses import LOSSES, TaskLoss, label_ranks, register_loss
from emonet.training.optim import OPTIMIZERS, build_optimizer, parameter_groups, register_optimizer
from emonet.training.run_dir import read_config

TINY = ModelConfig(n_blocks=1, n_filters=4, n_mels=32)
TASK = "arousal"


def _one_step(store_path, loss_name: str, optimizer: str) -> tuple[float, list[str], list[str]]:
    """One real step on the first batch of the store's train partition: (loss, the names of the
    parameters the loss reaches, the names of those that changed)."""
    torch.manual_seed(0)
    store = emonet.open_store(store_path)
    classes = store.classes(TASK)
    model = build_model(TINY, {TASK: classes})
    opt = build_optimizer(optimizer, parameter_groups(model, [TASK]), 0.1)
    loss_fn = TaskLoss(loss_name, len(classes), ranks=label_ranks(classes, None))
    x, lengths, labels = next(iter(batches(store, TASK, batch_size=8, window=1.0)))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = loss_fn(model(x, lengths, TASK), labels)
    loss.backward()
    reached = [n for n, p in model.named_parameters() if p.grad is not None and float(p.grad.abs().max()) > 1e-4]
    opt.step()
    changed = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    return float(loss.detach()), reached, changed


@pytest.mark.parametrize("loss_name", list(LOSSES))
def test_every_registered_loss_takes_a_real_step(small_store, loss_name):
    loss, reached, changed = _one_step(small_store, loss_name, "sgd")
    assert math.isfinite(loss) and loss > 0
    assert f"heads.{TASK}.fc2.weight" in reached, reached
    assert set(reached) <= set(changed), sorted(set(reached) - set(changed))


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_every_registered_optimizer_takes_a_real_step(small_store, optimizer):
    loss, reached, changed = _one_step(small_store, "crossentropy", optimizer)
    assert math.isfinite(loss) and reached
    assert set(reached) <= set(changed), sorted(set(reached) - set(changed))


@pytest.fixture
def brier_loss():
    """A loss the package does not have (the Brier score), registered for one test."""
    calls = []

    def brier(logits, labels, loss):
        calls.append(logits.requires_grad)
        target = torch.nn.functional.one_hot(labels, loss.n_classes).float()
        return ((logits.softmax(dim=1) - target) ** 2).sum(dim=1)

    register_loss("brier", brier, help="the Brier score")
    yield calls
    del LOSSES["brier"]


@pytest.mark.slow  # a real training run
def test_a_registered_loss_trains_through_the_python_api(small_store, tmp_path, brier_loss):
    cfg = TrainConfig(stores=[str(small_store)], tasks=[TASK], experiments=str(tmp_path), model=TINY, loss="brier",
                      batch_size=8, window=1.0, epochs=1, steps_per_epoch=2, learning_rate=0.01)  # fmt: skip
    run, results = train(cfg)
    assert brier_loss.count(True) == 2, "each training step's loss is the registered one"
    assert False in brier_loss, "the devel loss is too"
    assert read_config(run)["loss"] == "brier"
    assert math.isfinite(results[TASK]["test"]["uar"])


def test_configs_check_names_against_the_registries(small_store, tmp_path, brier_loss):
    base = dict(stores=[str(small_store)], tasks=[TASK], experiments=str(tmp_path))
    assert TrainConfig(**base, loss="brier").loss == "brier"
    with pytest.raises(ConfigError, match="'hinge' is not one of: crossentropy, focal, ordinal, brier"):
        TrainConfig(**base, loss="hinge")
    with pytest.raises(ConfigError, match="--label-order only applies to a loss over ranked classes .ordinal."):
        TrainConfig(**base, loss="brier", label_order={TASK: ["low", "mid", "high"]})
    with pytest.raises(ValueError, match="already registered"):
        register_loss("brier", lambda logits, labels, loss: logits, help="again")


def test_a_registered_optimizer_is_built_with_its_defaults():
    register_optimizer("plain-sgd", torch.optim.SGD, help="SGD without momentum", defaults={"dampening": 0.5})
    try:
        p = torch.nn.Parameter(torch.ones(2))
        opt = build_optimizer("plain-sgd", [{"name": "shared", "params": [p]}], 0.3)
        group = opt.param_groups[0]
        assert type(opt) is torch.optim.SGD and group["momentum"] == 0 and group["dampening"] == 0.5
        assert group["lr"] == 0.3 and group["name"] == "shared"
    finally:
        del OPTIMIZERS["plain-sgd"]
    assert "plain-sgd" not in OPTIMIZERS
