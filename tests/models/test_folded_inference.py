"""The inference form of the cnn (eval mode without gradients: each unit one conv with its
adapter and BatchNorm folded in, bias/residual/ReLU fused, padding zeroed by slices) computes
the training form's function: exactly in float64 (the algebra), and within float32 rounding
with oneDNN's fused float32 kernels (AVX2 and AVX-512 alike). The training form runs in eval
mode with gradients enabled."""

from __future__ import annotations

import pytest
import torch

from emonet.models import build_model
from emonet.models.config import ModelConfig
from tests.helpers import F64

ADAPTERS = ("parallel", "series", "none")
FORMATS = ("channels_last", "contiguous")


def _both(model, x, lengths, task):
    """(training form, inference form) logits of ``task`` in eval mode."""
    model.eval()
    with torch.enable_grad():
        ref = model(x, lengths, task).detach()
    with torch.no_grad():
        new = model(x, lengths, task)
    return ref, new


@pytest.mark.parametrize("memory_format", FORMATS)
@pytest.mark.parametrize("adapter_type", ADAPTERS)
def test_the_folded_form_is_the_same_function_in_float64(
    float64, tiny, tasks, randomize, make_batch, adapter_type, memory_format
):
    model = randomize(build_model(tiny(n_blocks=2, adapter_type=adapter_type, memory_format=memory_format), tasks))
    x, lengths = make_batch(n=5)
    lengths[1] = 19  # odd lengths: the downsampling shortcut's half-padded window
    for task in tasks:
        ref, new = _both(model, x, lengths, task)
        torch.testing.assert_close(new, ref, **F64)


@pytest.mark.parametrize("adapter_type", ADAPTERS)
def test_the_folded_form_agrees_in_float32_with_the_fused_kernels(tiny, tasks, randomize, make_batch, adapter_type):
    """float32 (oneDNN's fused conv + bias + add + ReLU on the CPU): the two forms round
    differently, ~1e-6 relative per layer; 1e-4 of the logits' scale holds on AVX2 and AVX-512
    kernels, far below a wrong fold (a missing BN shift or adapter moves logits by > 1e-2)."""
    model = randomize(build_model(tiny(n_blocks=2, n_filters=8, adapter_type=adapter_type), tasks))
    x, lengths = make_batch(n=6)
    for task in tasks:
        ref, new = _both(model, x, lengths, task)
        scale = ref.abs().max().item()
        torch.testing.assert_close(new, ref, rtol=1e-4, atol=1e-4 * scale)


def test_a_padded_item_scores_as_alone_in_the_folded_form(float64, tiny, tasks, randomize, make_batch):
    model = randomize(build_model(tiny(n_blocks=2), tasks)).eval()
    x, lengths = make_batch(n=4)
    with torch.no_grad():
        batch = model(x, lengths, "a")
        for i in range(4):
            alone = model(x[i : i + 1, : int(lengths[i])], None, "a")
            torch.testing.assert_close(batch[i : i + 1], alone, **F64)


def test_the_folded_kernels_follow_changed_weights(float64, tiny, tasks, randomize, make_batch):
    """The folded kernels are kept between batches and made again once a weight or statistic
    changes (an optimiser step, load_state_dict): scoring never runs stale weights."""
    model = randomize(build_model(tiny(), tasks)).eval()
    x, lengths = make_batch()
    with torch.no_grad():
        before = model(x, lengths, "a")
        model.cnn.stages[0][0].unit2.bn["a"].running_mean.add_(0.5)  # in place, as a BN update is
        model.cnn.stem.adapter["a"].weight.mul_(2.0)
    ref, new = _both(model, x, lengths, "a")
    assert (new - before).abs().max() > 1e-3
    torch.testing.assert_close(new, ref, **F64)
    other = randomize(build_model(tiny(), tasks), seed=7)
    model.load_state_dict(other.state_dict())
    ref, new = _both(model, x, lengths, "a")
    torch.testing.assert_close(new, ref, **F64)


def test_the_avgpool_top_in_the_folded_form(float64, tasks, randomize, make_batch):
    config = ModelConfig(n_blocks=1, n_filters=4, n_mels=64, classifier="avgpool", input_frames=64)
    model = randomize(build_model(config, tasks))
    gen = torch.Generator().manual_seed(3)
    x, lengths = torch.randn(3, 64, 64, generator=gen), torch.tensor([64, 37, 50])
    ref, new = _both(model, x, lengths, "b")
    torch.testing.assert_close(new, ref, **F64)
