"""The modes from an initial model (-m finetune|last-layer|adapters -im) start each part as the
original EmoNet's table says: finetune is the adapter-free network of the trained tasks with
fresh BNs and a new attention; adapters gives a new task new he_normal adapters, fresh BNs and a
new attention; last-layer copies a source task's trained parts (the fix of the original's bug 6);
``copy_task_parts`` (an improvement) copies them in every mode."""

import math

import pytest
import torch
import torch.nn.functional as F

from emonet.errors import ConfigError, UnknownTaskError
from emonet.models import setup_model, trainable_parameter_names
from emonet.models.keras_init import ATTENTION_STD

NEW = {"new": ["lo", "mid", "hi", "top"]}


@pytest.fixture
def initial(tiny, tasks, randomize, make_batch):
    """A trained model with tasks a and b (multi-task adapters, or adapter-free scratch)."""

    def make(kind="cnn", adapter_type="parallel", **options):
        mode = "scratch" if adapter_type == "none" else "adapters"
        model = setup_model(mode, tasks, config=tiny(model=kind, adapter_type=adapter_type, **options))
        randomize(model)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for task, classes in tasks.items():  # one real step each: trained BN statistics
            x, lengths = make_batch(seed=5)
            opt.zero_grad()
            F.cross_entropy(model(x, lengths, task), torch.arange(x.shape[0]) % len(classes)).backward()
            opt.step()
        return model.eval()

    return make


def _parts(model, task, categories):
    """(qualified name -> tensor) of ``task``'s parts of ``categories``, the task name left out."""
    roles = model.tensor_roles()
    return {
        k.replace(f".{task}.", ".<t>."): v
        for k, v in model.state_dict().items()
        if roles[k][0] == task and roles[k][1] in categories
    }


def _same(first: dict, second: dict) -> bool:
    assert first.keys() == second.keys() and first
    return all(torch.equal(first[k], second[k]) for k in first)


def _assert_fresh_norms(model, task):
    """BatchNorms (and the rnn's LayerNorms) as a new model's: mean 0, var 1, weight 1, bias 0."""
    norms = _parts(model, task, ("bn", "norm"))
    assert norms
    for key, value in norms.items():
        if key.endswith(("running_mean", ".bias")):
            assert torch.equal(value, torch.zeros_like(value)), key
        elif key.endswith(("running_var", ".weight")):
            assert torch.equal(value, torch.ones_like(value)), key


def _train_step(model, task):
    """A real forward and backward and an SGD step; every trainable shared or ``task`` parameter gets a gradient."""
    model.train()
    roles = model.tensor_roles()
    params = [p for n, p in model.named_parameters() if p.requires_grad and roles[n][0] in (None, task)]
    opt = torch.optim.SGD(params, lr=0.05)
    x = torch.randn(4, 56, 32)
    lengths = torch.tensor([56, 40, 30, 50])
    loss = F.cross_entropy(model(x, lengths, task), torch.arange(4) % len(model.tasks[task]))
    loss.backward()
    assert all(p.grad is not None for p in params)
    opt.step()
    return float(loss.detach())


@pytest.mark.parametrize("kind", ["cnn", "rnn", "fusion"])
@pytest.mark.parametrize("adapter_type", ["parallel", "series", "none"])
def test_finetune_is_the_originals_adapter_free_network_of_the_trained_tasks(kind, adapter_type, initial):
    if kind == "rnn" and adapter_type == "series":
        pytest.skip("rnn has bottleneck adapters only")
    source = initial(kind, adapter_type)
    model = setup_model("finetune", {**NEW, "a": source.tasks["a"]}, initial=source)
    assert model.config.adapter_type == "none" and model.config.model == kind
    assert not any("adapter" in k for k in model.state_dict())
    assert list(model.tasks) == ["new", "a"]  # b is gone: only the trained tasks
    old, new, roles = source.state_dict(), model.state_dict(), model.tensor_roles()
    shared = [k for k, (t, c) in roles.items() if t is None]
    assert shared and all(torch.equal(new[k], old[k]) for k in shared)  # shared convs (rnn) loaded
    for task in ("new", "a"):
        _assert_fresh_norms(model, task)  # new BNs, even for a task the initial model has
        attention = _parts(model, task, ("attention",))
        assert not _same(attention, _parts(source, "a", ("attention",)))  # a new attention
        weights = torch.cat([v.flatten() for k, v in attention.items()])
        assert abs(float(weights.std()) - ATTENTION_STD) < 0.01  # keras init, as a fresh model's
    assert _same(_parts(model, "a", ("head",)), _parts(source, "a", ("head",)))  # its head loaded
    assert set(trainable_parameter_names(model)) == {n for n, _ in model.named_parameters()}
    assert math.isfinite(_train_step(model, "new")) and math.isfinite(_train_step(model, "a"))


def test_finetune_with_copied_task_parts(initial, tasks):
    source = initial("cnn", "parallel")
    model = setup_model("finetune", {**NEW, "b": tasks["b"]}, initial=source, copy_task_parts=True)
    assert model.config.adapter_type == "none" and list(model.tasks) == ["new", "b"]
    parts = ("bn", "attention")
    assert _same(_parts(model, "new", parts), _parts(source, "a", parts))  # the first task's
    assert _same(_parts(model, "b", parts), _parts(source, "b", parts))  # its own
    chosen = setup_model("finetune", NEW, initial=source, copy_task_parts=True, source_task="b")
    assert _same(_parts(chosen, "new", parts), _parts(source, "b", parts))
    _train_step(model, "new")


@pytest.mark.parametrize("copy", [False, True])
def test_finetune_with_a_shared_attention(initial, copy):
    source = initial("cnn", "parallel", share_feature_layer=True)
    model = setup_model("finetune", NEW, initial=source, copy_task_parts=copy)
    key = "cnn_pool.shared_attention.proj.weight"
    assert torch.equal(model.state_dict()[key], source.state_dict()[key]) == copy  # new, or copied with the option
    assert key in trainable_parameter_names(model)


def test_finetune_refuses_adapters(initial, tiny):
    with pytest.raises(ConfigError, match="finetune' trains the network without adapters"):
        setup_model("finetune", NEW, initial=initial(), config=tiny(adapter_type="series"), given={"adapter_type"})
    model = setup_model("finetune", NEW, initial=initial(), config=tiny(adapter_type="none"), given={"adapter_type"})
    assert model.config.adapter_type == "none"


def _he_normal_ratio(model, task):
    """The std of the task's 1x1 adapter kernels, each divided by its he_normal std sqrt(2 / fan_in)."""
    kernels = [v for k, v in _parts(model, task, ("adapters",)).items() if v.dim() == 4]
    assert kernels
    return float(torch.cat([(w / math.sqrt(2 / w[0].numel())).flatten() for w in kernels]).std())


@pytest.mark.parametrize("adapter_type", ["parallel", "series", "none"])
def test_adapters_mode_gives_a_new_task_new_parts(adapter_type, initial, tasks):
    source = initial("cnn", adapter_type)
    model = setup_model("adapters", NEW, initial=source)
    assert list(model.tasks) == ["a", "b", "new"]
    _assert_fresh_norms(model, "new")
    assert abs(_he_normal_ratio(model, "new") - 1) < 0.15  # he_normal, not zero, not a copy
    for category in ("adapters", "attention"):
        assert not _same(_parts(model, "new", (category,)), _parts(model, "a", (category,)))
    kept = ("adapters", "bn", "attention", "head") if adapter_type != "none" else ("bn", "attention", "head")
    for task in tasks:  # the initial model's tasks keep every part
        assert _same(_parts(model, task, kept), _parts(source, task, kept))
    trainable = trainable_parameter_names(model)
    assert all(".new." in n for n in trainable) and any("adapter" in n for n in trainable)
    _train_step(model, "new")
    zero = setup_model("adapters", NEW, initial=source, identity_adapters=True)
    assert all(not v.any() for v in _parts(zero, "new", ("adapters",)).values() if v.dim() == 4)


def test_adapters_mode_with_copied_task_parts(initial):
    source = initial("cnn", "parallel")
    parts = ("adapters", "bn", "attention")
    model = setup_model("adapters", NEW, initial=source, copy_task_parts=True)
    assert _same(_parts(model, "new", parts), _parts(source, "a", parts))
    chosen = setup_model("adapters", NEW, initial=source, copy_task_parts=True, source_task="b")
    assert _same(_parts(chosen, "new", parts), _parts(source, "b", parts))
    with pytest.raises(UnknownTaskError, match="unknown source task 'zzz'"):
        setup_model("adapters", NEW, initial=source, copy_task_parts=True, source_task="zzz")


@pytest.mark.parametrize("copy", [False, True])
@pytest.mark.parametrize("adapter_type", ["parallel", "none"])
def test_last_layer_copies_the_source_tasks_trained_parts(adapter_type, copy, initial):
    """The fix of bug 6, with or without the option: frozen fresh BNs and a random attention
    would feed the new head features no task was trained on."""
    source = initial("cnn", adapter_type)
    model = setup_model("last-layer", NEW, initial=source, copy_task_parts=copy)
    parts = ("adapters", "bn", "attention") if adapter_type != "none" else ("bn", "attention")
    assert _same(_parts(model, "new", parts), _parts(source, "a", parts))
    assert set(trainable_parameter_names(model)) == {
        n for n, _ in model.named_parameters() if n.startswith("heads.new.")
    }
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _train_step(model, "new")
    moved = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert moved and all(k.startswith("heads.new.") for k in moved)
