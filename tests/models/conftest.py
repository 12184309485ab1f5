"""Fixtures for the model tests: tiny configs that run in milliseconds on a CPU.

Helpers are handed out as fixtures (not imported) so the tests work under any pytest
import mode and next to other test folders' conftest files.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from emonet.models import ModelConfig

N_MELS = 32
N_FRAMES = 56
TASKS = {"a": ["neg", "neu", "pos"], "b": ["angry", "happy", "sad", "calm", "fear"]}


def _tiny_config(**overrides) -> ModelConfig:
    base = dict(
        n_blocks=1,
        n_filters=4,
        n_mels=N_MELS,
        rnn_hidden=12,
        rnn_layers=2,
        rnn_time_pool=2,
        dropout=(0.1, 0.3),
    )
    base.update(overrides)
    return ModelConfig(**base)


def _randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Perturb every parameter and BN statistic so zero adapters, unit BNs and untrained
    parts cannot hide a bug (e.g. two tasks that are accidentally the same function)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.2 * torch.randn(b.shape, generator=gen))
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=gen) + 0.5)
    return model


def _batch(n: int = 4, frames: int = N_FRAMES, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """A log-mel-like batch with varied lengths (the first item uses every frame)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, frames, N_MELS, generator=gen)
    lengths = torch.randint(frames // 3, frames + 1, (n,), generator=gen)
    lengths[0] = frames
    return x, lengths


@pytest.fixture
def tiny() -> Callable[..., ModelConfig]:
    return _tiny_config


@pytest.fixture
def randomize() -> Callable[..., torch.nn.Module]:
    return _randomize


@pytest.fixture
def make_batch() -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    return _batch


@pytest.fixture
def tasks() -> dict[str, list[str]]:
    return {k: list(v) for k, v in TASKS.items()}


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@pytest.fixture
def float64():
    """The model tests compare two computations of one function (padded vs alone, fused vs
    two convs, masked vs literal BatchNorm). They run in float64: oneDNN's float32 kernels
    differ by CPU and batch shape and round at ~1e-5 after a few layers, float64 at ~1e-14,
    so ``tests.helpers.F64`` separates rounding from any real bug (one masked frame moves outputs by
    >= 1e-3). Modules that compare computations use it (``pytestmark``)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)
