"""Modes: exactly the trainable/frozen sets of the original EmoNet's table of modes, and frozen means frozen."""

import pytest
import torch
import torch.nn.functional as F

from emonet.errors import ConfigError
from emonet.models import (
    MODES,
    adapter_parameters,
    apply_mode,
    build_model,
    setup_model,
    trainable_parameter_names,
)

NEW = {"new": ["lo", "mid", "hi", "top"]}


def _train_steps(model, task, make_batch, steps=3, lr=0.05):
    """SGD with momentum and weight decay over *all* parameters: frozen ones must not move."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-2)
    model.train()
    n_classes = len(model.tasks[task])
    for step in range(steps):
        x, lengths = make_batch(seed=10 + step)
        y = torch.arange(x.shape[0]) % n_classes
        opt.zero_grad()
        F.cross_entropy(model(x, lengths, task), y).backward()
        opt.step()


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _expected_trainable(mode, names):
    """The original's table of modes, written against parameter names (independent of the model's own roles)."""
    old = (".a.", ".b.")
    if mode in ("scratch", "finetune"):
        return {n for n in names if not any(o in n for o in old)}
    if mode == "last-layer":
        return {n for n in names if n.startswith("heads.new.")}
    if mode == "adapters":
        return {n for n in names if ".new." in n}
    raise AssertionError(mode)


@pytest.fixture
def initial(tiny, tasks, randomize, make_batch):
    """A trained multi-task model (adapters mode, no initial model) with tasks a and b."""

    def make(kind="cnn", adapter_type="parallel", classifier="attention"):
        mode = "scratch" if adapter_type == "none" else "adapters"  # multi-task, no initial model
        model = setup_model(mode, tasks, config=tiny(model=kind, adapter_type=adapter_type, classifier=classifier))
        randomize(model)
        for task in tasks:
            _train_steps(model, task, make_batch, steps=1)
        return model.eval()

    return make


# (mode, adapter type of the initial model): the original's single-task initial models had no
# adapters; a multi-task one has them; adapters mode also converts an adapter-free model.
SETUPS = [
    ("scratch", None),
    ("finetune", "none"),
    ("finetune", "parallel"),
    ("last-layer", "none"),
    ("last-layer", "series"),
    ("adapters", "parallel"),
    ("adapters", "series"),
    ("adapters", "none"),
]


def test_every_mode_is_covered():
    assert {m for m, _ in SETUPS} == set(MODES)


@pytest.mark.parametrize("kind", ["cnn", "rnn", "fusion"])
@pytest.mark.parametrize("mode, initial_adapters", SETUPS, ids=[f"{m}-from-{a}" for m, a in SETUPS])
@pytest.mark.slow
def test_mode_trains_exactly_the_table_and_freezes_the_rest(mode, initial_adapters, kind, tiny, initial, make_batch):
    if kind == "rnn" and initial_adapters == "series":
        pytest.skip("rnn has bottleneck adapters only (series is refused: test_config)")
    # Seed 0 draws, for rnn from an adapter-free model, a 3-unit bottleneck adapter whose ReLUs
    # are off on every input of these batches: no gradient can reach it, so it cannot train.
    torch.manual_seed(1)
    if mode == "scratch":
        model = setup_model("scratch", NEW, config=tiny(model=kind))
        assert model.config.adapter_type == "none"
        assert not any("adapter" in n for n in model.state_dict())
    else:
        model = setup_model(mode, NEW, initial=initial(kind, adapter_type=initial_adapters))
        # finetune: the original's adapter-free network of the trained tasks (test_initial_modes)
        assert set(model.tasks) == ({"new"} if mode == "finetune" else {"a", "b", "new"})
        assert model.config.has_adapters == (
            mode == "adapters" or (mode == "last-layer" and initial_adapters != "none")
        )
    names = [n for n, _ in model.named_parameters()]
    expected = _expected_trainable(mode, names)
    assert set(trainable_parameter_names(model)) == expected
    if mode == "adapters":
        assert any(".adapter" in n or ".adapters." in n for n in expected)

    # Gradients reach every trainable parameter and nothing else.
    model.train()
    x, lengths = make_batch()
    F.cross_entropy(model(x, lengths, "new"), torch.tensor([0, 1, 2, 3])).backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == expected
    model.zero_grad(set_to_none=True)

    # Optimiser steps: frozen parameters and buffers (BN statistics included) stay bit-identical.
    before = _snapshot(model)
    _train_steps(model, "new", make_batch)
    after = model.state_dict()
    trainable_buffers_may_move = {k for k in after if k.rsplit(".", 1)[0] + ".weight" in expected}
    for key, value in after.items():
        if key in expected:
            assert not torch.equal(value, before[key]), f"{key} should have trained"
        elif key not in trainable_buffers_may_move:
            assert torch.equal(value, before[key]), f"{key} is frozen but changed"


@pytest.mark.slow
def test_frozen_batchnorm_stays_in_eval_mode(initial):
    model = setup_model("last-layer", NEW, initial=initial())
    model.train()
    bns = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert bns and not any(m.training for m in bns.values())
    assert model.heads["new"].bn.training  # the head's BN trains
    apply_mode(model, "finetune", ["new"])
    assert all(m.training for n, m in bns.items() if ".new" in n)


def test_adapters_mode_from_adapter_free_model_starts_from_it(tiny, tasks, randomize, make_batch):
    """With identity_adapters, an adapter-free (scratch) model gains identity adapters: its tasks'
    outputs are unchanged (the original's he_normal adapters change them)."""
    for adapter_type in ("parallel", "series"):
        scratch = randomize(setup_model("scratch", tasks, config=tiny())).eval()
        cfg = tiny(adapter_type=adapter_type)
        he = setup_model("adapters", NEW, initial=scratch, config=cfg).eval()
        model = setup_model("adapters", NEW, initial=scratch, config=cfg, identity_adapters=True).eval()
        assert model.config.adapter_type == adapter_type
        x, lengths = make_batch()
        with torch.no_grad():
            for task in tasks:
                assert torch.equal(model(x, lengths, task), scratch(x, lengths, task))
                assert not torch.allclose(he(x, lengths, task), scratch(x, lengths, task))


@pytest.mark.slow
def test_new_task_in_adapters_mode_leaves_earlier_tasks_bit_identical(initial, make_batch):
    for kind in ("cnn", "rnn", "fusion"):
        model = initial(kind)
        x, lengths = make_batch(seed=99)
        with torch.no_grad():
            before = {t: model(x, lengths, t) for t in ("a", "b")}
        state = _snapshot(model)
        model.add_task("c", ["p", "q"], init_from="a")
        apply_mode(model, "adapters", ["c"])
        _train_steps(model, "c", make_batch, steps=3)
        model.eval()
        with torch.no_grad():
            for t in ("a", "b"):
                assert torch.equal(model(x, lengths, t), before[t]), (kind, t)
        new_state = model.state_dict()
        assert all(torch.equal(new_state[k], v) for k, v in state.items())
        assert not torch.equal(new_state["heads.c.fc2.weight"], torch.zeros_like(new_state["heads.c.fc2.weight"]))


def test_multitask_adapters_without_initial_model_train_shared_convs(tiny, tasks):
    model = setup_model("adapters", tasks, config=tiny())
    trainable = set(trainable_parameter_names(model))
    assert "cnn.stages.0.0.unit1.conv.weight" in trainable
    assert {"cnn.stem.adapter.a.weight", "cnn.stem.adapter.b.weight"} <= trainable


def test_mode_errors(tiny, tasks, initial):
    model = build_model(tiny(adapter_type="none"), tasks)
    with pytest.raises(ValueError, match="unknown mode 'full'"):
        apply_mode(model, "full")
    with pytest.raises(ValueError, match="needs a model with adapters"):
        apply_mode(model, "adapters")
    with pytest.raises(KeyError, match="unknown task 'zzz'"):
        apply_mode(model, "finetune", ["zzz"])
    with pytest.raises(ValueError, match="needs an initial model"):
        setup_model("finetune", NEW, config=tiny())
    with pytest.raises(ValueError, match="takes no initial model"):
        setup_model("scratch", NEW, initial=initial())
    with pytest.raises(ValueError, match="exists in the initial model with classes"):
        setup_model("adapters", {"a": ["x", "y"]}, initial=initial())


def test_existing_task_keeps_its_parts_when_resumed(initial, make_batch):
    source = initial()
    model = setup_model("adapters", {"a": source.tasks["a"]}, initial=source).eval()
    x, lengths = make_batch()
    with torch.no_grad():
        assert torch.equal(model(x, lengths, "a"), source(x, lengths, "a"))


def test_adapter_parameters_are_the_tasks_1x1_kernels(tiny, tasks):
    model = build_model(tiny(n_blocks=2), tasks)
    kernels = adapter_parameters(model, "a")
    n_units = 1 + 3 * 2 * 2  # stem + 3 stages x 2 blocks x 2 units
    assert len(kernels) == n_units
    assert all(p.shape[-2:] == (1, 1) for p in kernels)
    ids_b = {id(p) for p in adapter_parameters(model, "b")}
    assert not ids_b & {id(p) for p in kernels}
    rnn = build_model(tiny(model="rnn"), tasks)
    assert len(adapter_parameters(rnn, "a")) == 2 * 2  # down and up weights per layer


@pytest.mark.parametrize(
    "mode, with_initial, shared_trains",
    [
        ("scratch", False, True),
        ("adapters", False, True),
        ("finetune", True, True),
        ("last-layer", True, False),
        ("adapters", True, False),
    ],
)
@pytest.mark.slow
def test_shared_feature_layer_under_the_modes(tiny, tasks, randomize, make_batch, mode, with_initial, shared_trains):
    """-sfl: the one attention layer is shared, so it trains exactly when the shared network does."""
    config = tiny(share_feature_layer=True, adapter_type="none" if mode == "finetune" else "parallel")
    initial = randomize(build_model(config, tasks)).eval() if with_initial else None
    model = setup_model(mode, NEW, config=None if with_initial else config, initial=initial)
    shared = {n for n, _ in model.named_parameters() if n.startswith("cnn_pool.shared_attention.")}
    assert shared and not any(".attention." in n for n, _ in model.named_parameters())
    trainable = set(trainable_parameter_names(model))
    assert (shared <= trainable) == shared_trains and not (shared & trainable and not shared_trains)
    before = _snapshot(model)
    _train_steps(model, "new", make_batch, steps=1)
    moved = {k for k in shared if not torch.equal(model.state_dict()[k], before[k])}
    assert moved == (shared if shared_trains else set())


def test_initial_model_options_must_match_or_are_refused(tiny, tasks, randomize):
    initial = randomize(build_model(tiny(adapter_type="none", dropout=(0.1, 0.3)), tasks)).eval()
    wanted = tiny(n_filters=8, n_blocks=2, classifier="avgpool", dropout=(0.0, 0.2))
    with pytest.raises(
        ConfigError,
        match=r"another architecture: -N/--number-of-resnet-blocks 2 \(initial model: 1\); -nf/--number-of-filters 8 "
        r"\(initial model: 4\); --adapter-type parallel \(initial model: none\); -c/--classifier avgpool",
    ):
        setup_model("last-layer", NEW, config=wanted, initial=initial, given=set(wanted.to_dict()))
    with pytest.raises(ConfigError, match=r"another architecture: -N/--number-of-resnet-blocks 2 \(initial model: 1\)"):
        setup_model("finetune", NEW, config=wanted.replace(adapter_type="none"), initial=initial, given={"n_blocks"})
    # nothing given (the default): the initial model's architecture and dropout are kept
    assert setup_model("finetune", NEW, config=wanted, initial=initial).config == initial.config
    # only what the user gave counts: defaults of the other options are no conflict
    model = setup_model("finetune", NEW, config=wanted, initial=initial, given={"dropout"})
    assert model.config == initial.config.replace(dropout=(0.0, 0.2))  # dropout overrides
    assert model.cnn.stages[0][0].unit2.drop.p == 0.2
    with pytest.raises(ConfigError, match=r"--adapter-type parallel \(initial model: none\)"):
        setup_model("last-layer", NEW, config=tiny(), initial=initial, given={"adapter_type"})
    with pytest.raises(ConfigError, match="needs --adapter-type parallel or series, not none"):
        setup_model("adapters", NEW, config=tiny(adapter_type="none"), initial=initial, given={"adapter_type"})
    converted = setup_model(
        "adapters", NEW, config=tiny(adapter_type="series"), initial=initial, given={"adapter_type"}
    )
    assert converted.config.adapter_type == "series"


def test_norm_statistics_and_feature_config_are_carried_over(tiny, tasks, randomize):
    initial = randomize(build_model(tiny(), tasks)).eval()
    initial.feature_config = {"n_mels": 32}
    initial.norm_stats = {"a": {"mean": [1.0], "std": [2.0]}, "b": {"mean": [3.0], "std": [4.0]}}
    model = setup_model("adapters", NEW, initial=initial)
    assert model.norm_stats == initial.norm_stats and model.feature_config == {"n_mels": 32}
    assert model.norm_stats is not initial.norm_stats
    assert model.training_record == {"mode": "adapters", "tasks": ["new"], "pretrained": True}
