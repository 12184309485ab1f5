"""Train-mode behaviour: where dropout acts, masked BatchNorm, padding invariance in training."""

import pytest
import torch
import torch.nn.functional as F

from emonet.models import build_model
from emonet.models.adapters import ConvUnit
from emonet.models.norm import BN_EPS, BN_MOMENTUM, MaskedBatchNorm2d
from tests.helpers import F64

pytestmark = pytest.mark.usefixtures("float64")  # see tests/models/conftest.py


def _unit(adapter_type, p=0.5):
    unit = ConvUnit(6, 8, 2, adapter_type, dropout=p)
    unit.bn.add("a")
    if adapter_type != "none":
        unit.adapter.add("a")
        torch.nn.init.normal_(unit.adapter["a"].weight)
    if adapter_type == "series":
        unit.adapter_bn.add("a")
    return unit.train()


@pytest.mark.parametrize("adapter_type", ["parallel", "series", "none"])
def test_dropout_acts_on_the_adapters_input_or_the_convs(adapter_type):
    """Replays the unit's dropout mask (same seed) and checks the formula of each unit kind:
    with adapters the shared 3x3 sees the undropped input."""
    unit, x = _unit(adapter_type), torch.randn(3, 6, 9, 11)
    torch.manual_seed(7)
    y = unit(x, "a")
    conv = lambda v: F.conv2d(v, unit.conv.weight, stride=2, padding=1)  # noqa: E731
    torch.manual_seed(7)
    if adapter_type == "parallel":
        dropped = unit.drop(x[:, :, ::2, ::2])  # the adapter reads its (dropped) input at stride 2
        expected = unit.bn["a"](conv(x) + F.conv2d(dropped, unit.adapter["a"].weight))
    elif adapter_type == "series":
        z = conv(x)
        dropped = unit.drop(unit.adapter_bn["a"](z))
        expected = unit.bn["a"](z + unit.adapter["a"](dropped))
    else:
        dropped = unit.drop(x)
        expected = unit.bn["a"](conv(dropped))
    assert (dropped == 0).float().mean() > 0.3  # the mask really dropped about half
    torch.testing.assert_close(y, expected, **F64)
    unit.eval()  # eval: no dropout, and the parallel unit runs its fused kernel
    torch.testing.assert_close(unit(x, "a"), unit.bn["a"](conv(x) + _adapter_term(unit, x)), **F64)


def _adapter_term(unit, x):
    if unit.adapter_type == "parallel":
        return F.conv2d(x, unit.adapter["a"].weight, stride=2)
    if unit.adapter_type == "series":
        z = F.conv2d(x, unit.conv.weight, stride=2, padding=1)
        return unit.adapter["a"](unit.adapter_bn["a"](z))
    return 0.0


def test_dropout_rates_reach_the_two_units_of_every_block(tiny):
    net = build_model(tiny(n_blocks=2, dropout=(0.1, 0.3)), {"a": ["x", "y"]})
    assert net.cnn.stem.drop.p == 0.0
    for stage in net.cnn.stages:
        assert [(b.unit1.drop.p, b.unit2.drop.p) for b in stage] == [(0.1, 0.3)] * 2


def test_batchnorms_use_the_keras_defaults(tiny):
    net = build_model(tiny(), {"a": ["x", "y"]})
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and all((m.momentum, m.eps) == (BN_MOMENTUM, BN_EPS) == (0.01, 1e-3) for m in bns)


def test_masked_batchnorm_matches_batchnorm_on_the_valid_positions():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, 9)
    lengths = torch.tensor([9, 4, 6])
    mask = (torch.arange(9) < lengths[:, None])[:, None, None, :]
    masked, plain = MaskedBatchNorm2d(4), MaskedBatchNorm2d(4)
    y = masked(x, mask)
    valid = torch.cat([x[i, :, :, : lengths[i]].reshape(4, -1) for i in range(3)], dim=1)  # [C, n]
    expected_mean, expected_var = valid.mean(1), valid.var(1, unbiased=False)
    ref = (x - expected_mean[None, :, None, None]) / torch.sqrt(expected_var[None, :, None, None] + BN_EPS)
    torch.testing.assert_close(y * mask, ref * mask, **F64)
    # the first batch sets the running statistics (warm start), unbiased variance as torch
    torch.testing.assert_close(masked.running_mean, expected_mean, **F64)
    torch.testing.assert_close(masked.running_var, valid.var(1, unbiased=True), **F64)
    plain(x)  # without a mask: torch's BatchNorm over every position
    assert not torch.allclose(plain.running_mean, masked.running_mean)


@pytest.mark.parametrize("kind, adapter_type", [("cnn", "parallel"), ("cnn", "series"), ("fusion", "none")])
def test_train_mode_forward_does_not_depend_on_padding(tiny, tasks, randomize, kind, adapter_type):
    """Training forward of a batch = the same batch padded further with garbage: same logits and
    the same running statistics afterwards. The cnn alone: one utterance = it padded."""
    config = tiny(model=kind, adapter_type=adapter_type, dropout=0.0, head_dropout=0.0)
    first = randomize(build_model(config, tasks)).train()
    second = build_model(config, tasks).train()
    second.load_state_dict(first.state_dict())
    x = torch.randn(2, 37, 32)
    lengths = torch.tensor([37, 21])
    padded = torch.cat([x, torch.full((2, 14, 32), float("nan"))], dim=1)  # garbage must not leak
    torch.testing.assert_close(second(padded, lengths, "a"), first(x, lengths, "a"), **F64)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, **F64, msg=name)

    alone, together = first.cnn, second.cnn
    one = x[1:, :21].transpose(1, 2).unsqueeze(1)
    two = torch.cat([one, torch.full((1, 1, 32, 30), -7.0)], dim=3)
    feat_alone, len_alone = alone(one.contiguous(), torch.tensor([21]), "b")
    feat_padded, len_padded = together(two.contiguous(), torch.tensor([21]), "b")
    assert len_alone.tolist() == len_padded.tolist() == [3]
    torch.testing.assert_close(feat_padded[..., :3], feat_alone, **F64)
    running = [k for k in first.state_dict() if k.startswith("cnn.") and k.endswith("running_var")]
    for key in running:
        torch.testing.assert_close(second.state_dict()[key], first.state_dict()[key], **F64)


@pytest.mark.parametrize("masked", [True, False])
def test_running_statistics_average_the_first_batches_then_follow_keras(masked):
    """Warm start: after k <= 100 training batches the running mean is the plain average of
    their means; afterwards each batch weighs Keras' 0.01. Loading a state continues the count."""
    from emonet.models.norm import BatchNorm1d, warm_momentum

    torch.manual_seed(0)
    bn = MaskedBatchNorm2d(3) if masked else BatchNorm1d(3, eps=BN_EPS, momentum=BN_MOMENTUM)
    shape = (4, 3, 2, 5) if masked else (8, 3)
    mask = torch.ones(4, 1, 1, 5, dtype=torch.bool) if masked else None
    means = []
    for k in range(103):
        x = torch.randn(shape) + k
        means.append(x.mean(dim=(0, 2, 3)) if masked else x.mean(0))
        bn(x, mask) if masked else bn(x)
        if k == 9:
            torch.testing.assert_close(bn.running_mean, torch.stack(means).mean(0), **F64)
    assert [warm_momentum(n) for n in (0, 1, 99, 100, 5000)] == [1.0, 0.5, 0.01, 0.01, 0.01]
    state = bn.state_dict()
    again = MaskedBatchNorm2d(3) if masked else BatchNorm1d(3, eps=BN_EPS, momentum=BN_MOMENTUM)
    again.load_state_dict(state)
    x = torch.randn(shape)
    before = again.running_mean.clone()
    again(x, mask) if masked else again(x)
    batch_mean = x.mean(dim=(0, 2, 3)) if masked else x.mean(0)
    torch.testing.assert_close(again.running_mean, before.lerp(batch_mean, 0.01), **F64)
    assert bn.momentum == BN_MOMENTUM  # the attribute keeps the Keras value
