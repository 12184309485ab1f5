"""--recalibrate-bn: a task's BatchNorm running statistics re-estimated from its train data
before each devel scoring (an improvement, off by default). Real stores, real training runs."""

from __future__ import annotations

import torch

from emonet.data.normalization import task_normalizer
from emonet.models import ModelConfig, build_model, load_checkpoint
from emonet.store import open_store
from emonet.training import TrainConfig, train
from emonet.training.bn_recalibration import recalibrate, task_batchnorms

TINY = ModelConfig(n_blocks=1, n_filters=4, n_mels=32)


def _model(store):
    torch.manual_seed(0)
    return build_model(TINY, {t: store.classes(t) for t in ("acted", "arousal")})


def test_running_statistics_become_the_plain_average_of_the_train_batches(small_store):
    store = open_store(small_store)
    model = _model(store)
    model.train()
    first = task_batchnorms(model, "acted")[0]  # the stem's: its input depends on no other BatchNorm
    other = [bn.running_mean.clone() for bn in task_batchnorms(model, "arousal")]
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    tracked = first.num_batches_tracked.clone()
    first.running_mean.fill_(100.0)  # stale statistics, far from the features
    seen = []

    def capture(module, args):
        x, mask = args[0], (args[1] if len(args) > 1 else None)
        m = torch.ones_like(x[:, :1]) if mask is None else mask.to(x.dtype).expand(x.shape[0], 1, *x.shape[2:])
        seen.append((x * m).sum((0, 2, 3)) / m.sum())

    hook = first.register_forward_pre_hook(capture)
    used = recalibrate(model, store, "acted", task_normalizer(store, "acted", False), 3, 4, torch.device("cpu"))
    hook.remove()
    assert used == 3 == len(seen)
    torch.testing.assert_close(first.running_mean, torch.stack(seen).mean(0), rtol=1e-5, atol=1e-6)
    assert torch.equal(first.num_batches_tracked, tracked) and model.training  # training goes on as it was
    assert all(torch.equal(a, bn.running_mean) for a, bn in zip(other, task_batchnorms(model, "arousal"), strict=True))
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in weights.items())  # no weight moved
    assert all(
        not hasattr(bn, "__dict__") or "next_momentum" not in bn.__dict__ for bn in task_batchnorms(model, "acted")
    )


def test_a_run_with_the_option_has_the_same_weights_and_recalibrated_statistics(small_store, tmp_path):
    def run(name, n):
        cfg = TrainConfig(
            stores=[str(small_store)], tasks=["acted", "arousal"], experiments=str(tmp_path / name), model=TINY,
            batch_size=8, epochs=1, steps_per_epoch=4, learning_rate=0.01, recalibrate_bn=n,
        )  # fmt: skip
        folder, results = train(cfg)
        return load_checkpoint(folder / "last.safetensors")[0], results

    plain, _ = run("plain", 0)
    recal, results = run("recal", 50)
    a, b = plain.state_dict(), recal.state_dict()
    stats = [k for k in a if "running_" in k]
    weights = [k for k in a if "running_" not in k and "num_batches" not in k]
    assert all(torch.equal(a[k], b[k]) for k in weights)  # the option changes no training step
    assert any(not torch.equal(a[k], b[k]) for k in stats)
    # the run's statistics are those of its final weights: recalibrating the plain run's model again gives them
    store = open_store(small_store)
    for task in ("acted", "arousal"):
        recalibrate(plain, store, task, task_normalizer(store, task, False), 50, 8, torch.device("cpu"))
    for k in stats:
        torch.testing.assert_close(plain.state_dict()[k], b[k], rtol=1e-4, atol=1e-5)
    assert set(results) == {"acted", "arousal"}
