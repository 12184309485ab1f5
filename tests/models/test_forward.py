import itertools
import re

import pytest
import torch
import torch.nn.functional as F

from emonet.errors import UnknownTaskError
from emonet.models import build_model, resnet
from emonet.models.resnet import downsample_shortcut
from tests.helpers import F64

pytestmark = pytest.mark.usefixtures("float64")  # see tests/models/conftest.py

# rnn has bottleneck adapters only: "series" is refused for it (test_config).
VARIANTS = [
    v
    for v in itertools.product(["cnn", "rnn", "fusion"], ["meanpool", "attention"], ["parallel", "series"])
    if v[::2] != ("rnn", "series")
]
IDS = ["-".join(v) for v in VARIANTS]


@pytest.fixture(params=VARIANTS, ids=IDS)
def model(request, tiny, randomize, tasks):
    kind, classifier, adapter_type = request.param
    net = build_model(tiny(model=kind, classifier=classifier, adapter_type=adapter_type), tasks)
    return randomize(net).eval()


def test_output_shapes_per_task(model, make_batch, tasks):
    x, lengths = make_batch()
    for task, classes in tasks.items():
        logits = model(x, lengths, task)
        assert logits.shape == (x.shape[0], len(classes))
        assert torch.isfinite(logits).all()


def test_eval_output_does_not_depend_on_padding(model, make_batch):
    """An utterance scored alone == scored in a batch with a longer one, whatever the padding holds."""
    x, _ = make_batch(n=2)
    frames = x.shape[1]
    with torch.no_grad():
        for length in (frames - 1, frames - 2, frames // 2 + 1, 7, 1):
            alone = model(x[:1, :length], torch.tensor([length]), "a")
            padded = x.clone()
            padded[0, length:] = float("nan") if length % 2 else 50.0  # garbage: the model must ignore it
            together = model(padded, torch.tensor([length, frames]), "a")[:1]
            torch.testing.assert_close(together, alone, **F64)


@pytest.mark.slow
def test_tasks_are_routed_to_their_own_parts(model, make_batch):
    """Task c = a copy of task a (parts and head): same output as a. Perturb each kind of c's
    parts in turn (each unit's adapter and BatchNorm, attention, head...): c's output changes
    each time (c really uses it), a's and b's never do."""
    x, lengths = make_batch()
    with torch.no_grad():
        before = {t: model(x, lengths, t) for t in ("a", "b")}
        model.add_task("c", model.tasks["a"], init_from="a")
        model.heads["c"].load_state_dict(model.heads["a"].state_dict())
        assert torch.equal(model(x, lengths, "c"), before["a"])
        kinds: dict[str, list[torch.Tensor]] = {}  # c's parameters by kind: "cnn.stages.#.#.unit#.bn", ...
        for name, p in model.named_parameters():
            if ".c." in name:
                kinds.setdefault(re.sub(r"\d+", "#", name.split(".c.")[0]), []).append(p)
        assert len(kinds) >= 3, sorted(kinds)  # the rnn with meanpool: adapters, layer norms, head
        for kind, group in kinds.items():
            previous = model(x, lengths, "c")
            for p in group:
                p.add_(0.5 * torch.randn_like(p))
            c = model(x, lengths, "c")
            assert not torch.equal(c, previous), kind  # float64: any effect changes bits
            for t in ("a", "b"):
                assert torch.equal(model(x, lengths, t), before[t]), (kind, t)


def test_unknown_task_names_the_known_ones(model, make_batch):
    x, lengths = make_batch()
    with pytest.raises(KeyError, match=r"unknown task 'zzz'; this model has tasks: a, b"):
        model(x, lengths, "zzz")
    with pytest.raises(UnknownTaskError):
        model.add_task("c", ["x", "y"], init_from="zzz")


def test_shared_and_task_parameters_get_gradients(model, make_batch):
    """A train step of task a reaches the shared network and a's parts, never b's."""
    model.train()
    x, lengths = make_batch()
    F.cross_entropy(model(x, lengths, "a"), torch.tensor([0, 1, 2, 0])).backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert not any(".b." in n for n in with_grad)
    a_parts = {n for n, _ in model.named_parameters() if ".a." in n}
    assert a_parts <= with_grad
    shared = {n for n, _ in model.named_parameters() if ".a." not in n and ".b." not in n}
    assert shared <= with_grad


def test_input_validation(model, make_batch):
    x, lengths = make_batch()
    with pytest.raises(ValueError, match=r"expected x of shape \[batch, frames, 32\]"):
        model(x[..., :16], lengths, "a")
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 56\]"):
        model(x, torch.tensor([57, 3, 3, 3]), "a")
    with pytest.raises(ValueError, match="lengths must be an integer tensor"):
        model(x, lengths.float(), "a")
    # lengths=None means "no padding"
    torch.testing.assert_close(model(x, None, "a"), model(x, torch.full((4,), x.shape[1]), "a"), **F64)


def test_parameter_names_are_stable_and_meaningful(tiny, tasks):
    names = [list(build_model(tiny(model="fusion"), tasks).state_dict()) for _ in range(2)]
    assert names[0] == names[1]
    for expected in (
        "cnn.stem.conv.weight",
        "cnn.stem.adapter.a.weight",
        "cnn.stem.bn.b.running_var",
        "cnn.stages.1.0.unit1.conv.weight",
        "cnn.stages.2.0.unit2.adapter.b.weight",
        "cnn.final_bn.a.weight",
        "cnn_pool.attention.a.proj.weight",
        "rnn.lstms.1.weight_hh_l0",
        "rnn.adapters.0.b.down.weight",
        "rnn.layer_norm.a.weight",
        "heads.a.fc1.weight",
        "heads.b.fc2.bias",
    ):
        assert expected in names[0]


def test_share_feature_layer_uses_one_attention(tiny, tasks, make_batch, randomize):
    net = randomize(build_model(tiny(share_feature_layer=True), tasks)).eval()
    names = list(net.state_dict())
    assert "cnn_pool.shared_attention.proj.weight" in names
    assert not any(".attention." in n for n in names)
    x, lengths = make_batch()
    assert net(x, lengths, "a").shape == (4, 3)


def test_parallel_unit_is_3x3_plus_1x1(tiny, randomize):
    """The merged-kernel conv equals the spec: conv3x3(x) + conv1x1_t(x), same stride."""
    net = randomize(build_model(tiny(), {"a": ["x", "y"]})).eval()
    unit = net.cnn.stages[1][0].unit1
    assert unit.stride == 2
    x = torch.randn(2, unit.conv.in_channels, 9, 11)
    expected = unit.bn["a"](
        F.conv2d(x, unit.conv.weight, stride=2, padding=1) + F.conv2d(x, unit.adapter["a"].weight, stride=2)
    )
    torch.testing.assert_close(unit(x, "a"), expected, **F64)


def test_series_unit_formula(tiny, randomize):
    net = randomize(build_model(tiny(adapter_type="series"), {"a": ["x", "y"]})).eval()
    unit = net.cnn.stages[1][0].unit1
    x = torch.randn(2, unit.conv.in_channels, 9, 11)
    z = unit.conv(x)
    expected = unit.bn["a"](z + unit.adapter["a"](unit.adapter_bn["a"](z)))
    torch.testing.assert_close(unit(x, "a"), expected, **F64)


def test_widths_and_strides_follow_the_original(tiny):
    """Pre-conv f = filters x widen; stages 2f, 4f, 8f, each starting with a stride-2 block."""
    net = build_model(tiny(n_blocks=2, n_filters=4, widen_factor=2), {"a": ["x", "y"]})
    widths = [[b.out_ch for b in stage] for stage in net.cnn.stages]
    strides = [[b.stride for b in stage] for stage in net.cnn.stages]
    assert widths == [[16, 16], [32, 32], [64, 64]]
    assert strides == [[2, 1], [2, 1], [2, 1]]
    assert net.cnn.stem.conv.out_channels == 8 and net.cnn.stem.stride == 1
    assert net.cnn.out_channels == 64
    feat, lens = net.cnn(torch.randn(2, 1, 32, 57), torch.tensor([57, 20]), "a")
    assert feat.shape == (2, 64, 4, 8) and lens.tolist() == [8, 3]  # 8x down, ceil at each stride


def test_downsample_shortcut_averages_like_keras_same_and_adds_zero_channels():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    y = downsample_shortcut(x, 6)
    assert y.shape == (2, 6, 3, 4)
    assert torch.equal(y[:, 3:], torch.zeros(2, 3, 3, 4))
    # 2x2 windows; at the odd edges the window holds only the real rows/columns (no padding averaged)
    assert y[0, 0, 0, 0] == x[0, 0, :2, :2].mean()
    assert y[0, 0, 0, 3] == x[0, 0, :2, 6].mean()
    assert y[1, 2, 2, 3] == x[1, 2, 4, 6]
    # with a length mask: item 1 has 3 valid frames, so its column 1 averages frame 2 alone
    mask = (torch.arange(7) < torch.tensor([[7], [3]]))[:, None, None, :]
    masked = downsample_shortcut(x * mask, 6, mask)
    assert masked[1, 0, 0, 1] == x[1, 0, :2, 2].mean()
    torch.testing.assert_close(masked[1, :, :, :2], downsample_shortcut(x[1:, :, :, :3], 6)[0], **F64)


def test_every_downsampling_block_adds_the_shortcut(tiny, monkeypatch, randomize):
    """The forward calls the shortcut once per stage and adds exactly what it returns."""
    net = randomize(build_model(tiny(n_blocks=2, dropout=0.0), {"a": ["x", "y"]})).eval()
    calls = []

    def spy(x, out_ch, mask=None):
        y = downsample_shortcut(x, out_ch, mask)
        calls.append((tuple(x.shape), tuple(y.shape)))
        return y

    monkeypatch.setattr(resnet, "downsample_shortcut", spy)
    with torch.no_grad():
        net.cnn(torch.randn(2, 1, 32, 20), torch.tensor([20, 20]), "a")
        assert calls == [
            ((2, 4, 32, 20), (2, 8, 16, 10)),
            ((2, 8, 16, 10), (2, 16, 8, 5)),
            ((2, 16, 8, 5), (2, 32, 4, 3)),
        ]
        block, x = net.cnn.stages[1][0], torch.randn(2, 8, 16, 10)
        branch = block.unit2(F.relu(block.unit1(x, "a")), "a")
        torch.testing.assert_close(block(x, "a", None, None), F.relu(branch + downsample_shortcut(x, 16)), **F64)


def test_adapter_free_model_has_no_adapters(tiny, tasks):
    net = build_model(tiny(model="fusion", adapter_type="none"), tasks)
    assert not any("adapter" in n for n in net.state_dict())


def test_channels_last_matches_contiguous(tiny, tasks, randomize, make_batch):
    a = randomize(build_model(tiny(memory_format="contiguous"), tasks)).eval()
    b = build_model(tiny(memory_format="channels_last"), tasks).eval()
    b.load_state_dict(a.state_dict())
    assert b.cnn.stem.conv.weight.is_contiguous(memory_format=torch.channels_last)
    x, lengths = make_batch()
    torch.testing.assert_close(b(x, lengths, "a"), a(x, lengths, "a"), **F64)


def test_bad_task_definitions(tiny):
    with pytest.raises(ValueError, match="invalid task name 'a.b'"):
        build_model(tiny(), {"a.b": ["x", "y"]})
    with pytest.raises(ValueError, match="needs at least 2 classes"):
        build_model(tiny(), {"a": ["x"]})
    with pytest.raises(ValueError, match="repeat"):
        build_model(tiny(), {"a": ["x", "x"]})
    net = build_model(tiny(), {"a": ["x", "y"]})
    with pytest.raises(ValueError, match="task 'a' already exists"):
        net.add_task("a", ["x", "y"])


def test_add_task_init_from_copies_all_but_the_head(model, make_batch):
    model.add_task("c", ["p", "q", "r"], init_from="a")
    state = model.state_dict()
    copied = [k for k in state if ".c." in k and not k.startswith("heads.")]
    assert copied
    for key in copied:
        assert torch.equal(state[key], state[key.replace(".c.", ".a.")]), key
    assert not torch.equal(state["heads.c.fc1.weight"], state["heads.a.fc1.weight"])
    fresh = [k for k in state if ".c." in k]
    model.remove_task("c")
    assert "c" not in model.tasks and not any(k in model.state_dict() for k in fresh)
