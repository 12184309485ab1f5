"""The masked BatchNorm's hand-written backward against autograd of the literal formula."""

import pytest
import torch

from emonet.models.norm import MaskedBatchNorm2d, _MaskedBatchNorm


def _literal(x, mask, weight, bias, eps):
    """The masked BatchNorm written out: statistics over the valid positions, output 0 elsewhere."""
    m = mask.to(x.dtype)
    count = m.expand(x.shape[0], 1, *x.shape[2:]).sum()
    z = x * m
    mean = z.sum((0, 2, 3)) / count
    var = (z * z).sum((0, 2, 3)) / count - mean.square()
    out = (x - mean[None, :, None, None]) * torch.rsqrt(var + eps)[None, :, None, None]
    return (out * weight[None, :, None, None] + bias[None, :, None, None]) * m


def _case(memory_format, dtype=torch.float64):
    torch.manual_seed(0)
    bn = MaskedBatchNorm2d(5).to(dtype).train()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1.0, 1.0)
    x = torch.randn(3, 5, 4, 7, dtype=dtype).contiguous(memory_format=memory_format).requires_grad_()
    mask = (torch.arange(7) < torch.tensor([7, 3, 5])[:, None])[:, None, None, :]
    return bn, x, mask


def _fast(bn, x, mask):
    return _MaskedBatchNorm.apply(x, mask.to(x.dtype), bn.weight, bn.bias, bn.eps)[0]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_gradients_match_the_literal_formula(memory_format, dtype):
    bn, x, mask = _case(memory_format, dtype)
    g = torch.randn(x.shape, dtype=x.dtype)
    out = bn(x, mask) if dtype == torch.float32 else _fast(bn, x, mask)  # the module computes in float32
    got = torch.autograd.grad(out, (x, bn.weight, bn.bias), g)
    ref = _literal(x, mask, bn.weight, bn.bias, bn.eps)
    want = torch.autograd.grad(ref, (x, bn.weight, bn.bias), g)
    torch.testing.assert_close(out, ref)
    for a, b, name in zip(got, want, ("x", "weight", "bias"), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    assert not out[1, :, :, 3:].any() and not got[0][1, :, :, 3:].any()  # padded positions: 0 out, 0 gradient
    assert out.is_contiguous(memory_format=memory_format) and got[0].is_contiguous(memory_format=memory_format)


def test_gradcheck_in_double():
    bn, x, mask = _case(torch.channels_last)
    assert torch.autograd.gradcheck(lambda v, w, b: _fast(bn, v, mask), (x, bn.weight, bn.bias))
