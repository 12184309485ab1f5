"""Shapes and layouts where torch 2.11's oneDNN kernels crashed or hung, run in float32 (the
kernels at fault; float64 does not use them). .ci/run runs this file on the machine's own
kernels and again under ONEDNN_MAX_CPU_ISA=AVX2; a hang fails after the per-test timeout.

The fault: the backward of a stride-2 1x1 convolution on channels_last input (SIGSEGV or
"double free" on AVX-512 kernels, no end on AVX2 ones). The parallel adapter with dropout ran
it; it now runs a stride-1 1x1 convolution of the strided input, the same function."""

import pytest
import torch
import torch.nn.functional as F

from emonet.models import ModelConfig, build_model
from emonet.models.adapters import ConvUnit

# (batch, in channels, mels, frames) -> out channels: the hostile probe's `-N 1 -nf 8 -do 0.2`
# first strided unit, and the model tests' tiny shapes.
CRASHED = [((16, 8, 32, 128), 16), ((4, 4, 56, 32), 8)]


@pytest.mark.parametrize(("shape", "out_ch"), CRASHED, ids=["probe", "tiny"])
def test_parallel_adapter_with_dropout_trains_on_channels_last(shape, out_ch):
    unit = ConvUnit(shape[1], out_ch, 2, "parallel", dropout=0.2)
    unit.bn.add("a")
    unit.adapter.add("a")
    torch.nn.init.normal_(unit.adapter["a"].weight)
    unit = unit.to(memory_format=torch.channels_last).train()
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last).requires_grad_()
    for _ in range(30):  # the crash needed repetition
        unit.zero_grad()
        x.grad = None
        unit(x, "a").square().mean().backward()
        assert torch.isfinite(x.grad).all() and torch.isfinite(unit.adapter["a"].weight.grad).all()
    # the same function as the strided 1x1 convolution it replaces (dropout replayed from one seed)
    torch.manual_seed(3)
    y = unit(x, "a")
    torch.manual_seed(3)
    dropped = unit.drop(x[:, :, ::2, ::2])
    conv = F.conv2d(x, unit.conv.weight, stride=2, padding=1)
    adapter = F.conv2d(dropped.contiguous(), unit.adapter["a"].weight.contiguous(), stride=1)
    expected = unit.bn["a"](conv + adapter)
    # float32, two kernels: rounding ~ 1e-6 of the outputs' unit scale (BatchNorm normalises)
    torch.testing.assert_close(y, expected, atol=1e-4, rtol=1e-4)


def test_a_model_with_dropout_on_parallel_adapters_trains_in_float32():
    """The probe's crashing command, as a model: `-N 1 -nf 8 -do 0.2`, channels_last, two tasks."""
    config = ModelConfig(n_blocks=1, n_filters=8, n_mels=32, dropout=(0.2, 0.2), memory_format="channels_last")
    net = build_model(config, {"a": ["x", "y"], "b": ["p", "q", "r"]}).train()
    x, lengths = torch.randn(16, 128, 32), torch.randint(40, 129, (16,))
    for step in range(6):
        task = "ab"[step % 2]
        net.zero_grad()
        F.cross_entropy(net(x, lengths, task), torch.randint(0, len(net.tasks[task]), (16,))).backward()
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
