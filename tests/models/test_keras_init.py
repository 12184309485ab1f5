"""A freshly built model's weights have the original EmoNet's (Keras') initial distributions:
truncated he_normal 3x3 and 1x1 kernels without bias, attention from a normal with std 0.05,
glorot-uniform dense layers with zero bias. Tolerances follow from the number of values."""

from __future__ import annotations

import math

import pytest
import torch

from emonet.models import ModelConfig, build_model, setup_model
from emonet.models.keras_init import TRUNCATED_STD

TASKS = {"a": ["neg", "neu", "pos"], "b": ["angry", "happy", "sad", "calm", "fear"]}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(ModelConfig(n_blocks=2, n_filters=16, n_mels=32, classifier="attention"), TASKS)


def _check_std(values: torch.Tensor, std: float) -> None:
    """``values`` have mean 0 and standard deviation ``std`` within 5 standard errors."""
    n = values.numel()
    assert abs(float(values.mean())) < 5 * std / math.sqrt(n)
    assert float(values.std()) == pytest.approx(std, rel=5 / math.sqrt(2 * n))


def _kernels(model, kind: str) -> list[torch.Tensor]:
    convs = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(m.bias is None for m in convs), "conv kernels have no bias"
    size = 3 if kind == "3x3" else 1
    return [m.weight.detach() for m in convs if m.kernel_size == (size, size)]


@pytest.mark.parametrize("kind", ["3x3", "1x1"])
def test_conv_kernels_are_truncated_he_normal_over_fan_in(model, kind):
    kernels = _kernels(model, kind)
    assert len(kernels) == (2 * 3 * 2 + 1) * (1 if kind == "3x3" else len(TASKS))  # units x (1 or per task)
    scaled = []
    for w in kernels:
        target = math.sqrt(2.0 / w[0].numel())  # fan_in: input channels x kernel area
        # truncated at 2 std of the normal drawn from, whose std is target / 0.8796
        assert float(w.abs().max()) <= 2 * target / TRUNCATED_STD
        scaled.append((w / target).flatten())
    values = torch.cat(scaled)
    _check_std(values, 1.0)
    # the cut is where Keras puts it, not at 2 x the kept values' std (a plain truncation)
    assert float(values.abs().max()) > 2.1


def test_attention_is_normal_with_std_0_05_and_dense_layers_glorot_uniform(model):
    att = [p.detach().flatten() for n, p in model.named_parameters() if ".attention." in n]
    assert len(att) == 3 * len(TASKS)  # W, b and u of each task
    _check_std(torch.cat(att), 0.05)
    for task in TASKS:
        for layer in (model.heads[task].fc1, model.heads[task].fc2):
            fan_out, fan_in = layer.weight.shape
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            w = layer.weight.detach()
            assert float(w.abs().max()) <= limit and float(w.abs().max()) > 0.9 * limit
            assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    scaled = torch.cat(
        [
            (layer.weight.detach() / math.sqrt(2.0 / sum(layer.weight.shape))).flatten()
            for task in TASKS
            for layer in (model.heads[task].fc1, model.heads[task].fc2)
        ]
    )  # glorot uniform: std sqrt(2 / (fan_in + fan_out))
    _check_std(scaled, 1.0)


def test_identity_adapters_are_zero_and_the_default_is_he_normal():
    cfg = ModelConfig(n_blocks=1, n_filters=4, n_mels=32)
    he = setup_model("adapters", TASKS, config=cfg)
    zero = setup_model("adapters", TASKS, config=cfg, identity_adapters=True)
    for m, nonzero in ((he, True), (zero, False)):
        adapters = [p for n, p in m.named_parameters() if ".adapter." in n]
        assert adapters and all(bool(p.abs().max() > 0) == nonzero for p in adapters)
