"""Real training runs on a real store: the run folder, learning, determinism, the schedule."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from emonet.models import ModelConfig, load_checkpoint
from emonet.training import TrainConfig, train
from emonet.training.config import TrainConfig as TC
from emonet.training.run_dir import read_config

pytestmark = pytest.mark.slow  # real training runs

TINY = ModelConfig(n_blocks=1, n_filters=4)


def _config(store, exps, tasks, **kw):
    base = dict(batch_size=8, window=1.0, epochs=2, patience=5, steps_per_epoch=4, learning_rate=0.01)
    base.update(kw)
    return TrainConfig(stores=[str(store)], tasks=tasks, experiments=str(exps), model=TINY, **base)


def test_multi_task_run_writes_a_complete_experiment_folder(small_store, tmp_path):
    cfg = _config(
        small_store, tmp_path / "exps", ["acted", "arousal"], balanced_weights=True, individual_weight_decay=True,
        epochs=1,
    )  # fmt: skip
    run, results = train(cfg)
    assert run.parent == tmp_path / "exps"
    assert cfg.mode == "adapters"  # several tasks without -im: the original's multi-task setting
    # the config re-creates the run
    again = TC.from_dict(read_config(run))
    assert again.to_dict() == cfg.to_dict()
    # checkpoints are self-describing
    model, meta = load_checkpoint(run / "best.safetensors")
    assert model.tasks == {"acted": ["angry", "happy", "neutral", "sad"], "arousal": ["high", "low"]}
    assert meta["feature_config"]["n_mels"] == 32 and set(meta["norm_stats"]) == {"acted", "arousal"}
    assert len(meta["norm_stats"]["acted"]["mean"]) == 32
    load_checkpoint(run / "last.safetensors")
    # metrics.csv: one row per epoch and task (three stages of one epoch)
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [(r["epoch"], r["task"]) for r in rows] == [(str(e), t) for e in (1, 2, 3) for t in ("acted", "arousal")]
    assert all(0.0 <= float(r["devel_uar"]) <= 1.0 and float(r["loss"]) > 0 for r in rows)
    # results.json: task -> partition -> metrics, devel and test
    doc = json.loads((run / "results.json").read_text())
    assert set(doc["acted"]) == {"devel", "test"} and doc["acted"]["test"] == results["acted"]["test"]
    assert sum(map(sum, doc["arousal"]["test"]["confusion_matrix"])) == 4
    for png in ("learning_curves.png", "confusion_acted.png", "confusion_arousal.png"):
        assert (run / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def test_training_learns_the_separable_task(small_store, tmp_path):
    cfg = _config(small_store, tmp_path, ["arousal"], optimizer="adam", epochs=2, steps_per_epoch=12)
    assert cfg.mode == "scratch"
    run, results = train(cfg)
    rows = [r for r in csv.DictReader(open(run / "metrics.csv"))]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert results["arousal"]["devel"]["uar"] >= 0.75  # 2 classes: chance is 0.5


def test_same_seed_same_results_and_runs_never_collide(small_store, tmp_path):
    cfg = _config(small_store, tmp_path, ["valence", "acted"], epochs=1, steps_per_epoch=2)
    run_a, _ = train(cfg)
    run_b, _ = train(cfg)
    assert run_a != run_b and run_a.parent == run_b.parent  # same second, two folders
    assert (run_a / "results.json").read_bytes() == (run_b / "results.json").read_bytes()
    sa, sb = load_checkpoint(run_a / "last.safetensors")[0], load_checkpoint(run_b / "last.safetensors")[0]
    for (k, a), b in zip(sa.state_dict().items(), sb.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_deterministic_runs_only_deterministic_kernels_and_gives_the_cpus_results(small_store, tmp_path):
    from emonet.training.callbacks import Callback

    class Seen(Callback):
        def on_fit_start(self, trainer):
            self.at_start = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic

        def on_step_end(self, trainer, step):
            self.in_step = torch.are_deterministic_algorithms_enabled()

    cfg = _config(small_store, tmp_path, ["acted"], epochs=1, steps_per_epoch=2)
    seen = Seen()
    run_a, _ = train(cfg)
    run_b, _ = train(TC.from_dict({**cfg.to_dict(), "deterministic": True}), callbacks=[seen])
    assert seen.at_start == (True, True) and seen.in_step
    assert not torch.are_deterministic_algorithms_enabled()  # the process's setting is back
    assert read_config(run_b)["deterministic"] is True and read_config(run_a)["deterministic"] is False
    # the CPU's kernels are deterministic already: the switch changes no number here
    assert (run_a / "results.json").read_bytes() == (run_b / "results.json").read_bytes()


def test_test_partition_selects_nothing(small_store, tmp_path):
    run, results = train(_config(small_store, tmp_path, ["arousal"], epochs=3, steps_per_epoch=2))
    doc = json.loads((run / "results.json").read_text())
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    best = doc["arousal"]["test"]["epoch"]  # the epoch whose weights were scored
    assert doc["arousal"]["devel"]["epoch"] == best and set(doc) == {"arousal"}
    uars = [float(r["devel_uar"]) for r in rows]
    assert uars[best - 1] == max(uars) and best == 1 + uars.index(max(uars))  # chosen on devel only
    assert "test" not in rows[0]["task"] and not any("test" in k for k in rows[0])


def test_evaluation_does_not_depend_on_batch_size(small_store, tmp_path):
    import emonet
    from emonet.data.normalization import task_normalizer
    from emonet.training.evaluate import evaluate_partition
    from emonet.training.losses import TaskLoss

    run, _ = train(_config(small_store, tmp_path, ["acted"], epochs=1, steps_per_epoch=2))
    model, _ = load_checkpoint(run / "best.safetensors")
    store = emonet.open_store(small_store)
    norm, loss = task_normalizer(store, "acted", False), TaskLoss("crossentropy", 4)
    dev = torch.device("cpu")
    cms = [evaluate_partition(model, store, "acted", "train", norm, loss, bs, dev)[0] for bs in (1, 3, 16)]
    assert all(np.array_equal(cms[0], c) for c in cms[1:])


def test_non_finite_loss_stops_with_one_line_and_keeps_the_last_checkpoint(small_store, tmp_path):
    from emonet.errors import TrainingError

    cfg = _config(small_store, tmp_path, ["arousal"], learning_rate=1e12, optimizer="sgd", epochs=2, steps_per_epoch=6)
    with pytest.raises(TrainingError) as exc:
        train(cfg)
    msg = str(exc.value)
    assert "\n" not in msg and "loss became" in msg and "Lower -lr" in msg
    run = next(tmp_path.iterdir())
    if (run / "last.safetensors").exists():
        load_checkpoint(run / "last.safetensors")  # still readable


@pytest.mark.parametrize("copy", [False, True], ids=["new-parts", "copy-task-parts"])
def test_adapters_on_a_trained_model_train_only_the_new_task(small_store, tmp_path, copy):
    base, _ = train(_config(small_store, tmp_path / "a", ["acted", "arousal"], epochs=1, steps_per_epoch=2))
    cfg = _config(small_store, tmp_path / "b", ["valence"], epochs=1, steps_per_epoch=3, mode="adapters",
                  initial_model=str(base / "best.safetensors"), copy_task_parts=copy)  # fmt: skip
    run, results = train(cfg)
    before, _ = load_checkpoint(base / "best.safetensors")
    after, meta = load_checkpoint(run / "best.safetensors")
    assert list(after.tasks) == ["acted", "arousal", "valence"] and set(results) == {"valence"}
    assert set(meta["norm_stats"]) == {"acted", "arousal", "valence"}
    roles = after.tensor_roles()
    old, new = before.state_dict(), after.state_dict()
    for key, (task, _) in roles.items():
        if task != "valence":
            assert torch.equal(old[key], new[key]), f"{key} must stay frozen"
    # the new task's parts start new (the original's: he_normal adapters, BNs weight 1) or, with
    # copy_task_parts, as copies of the first task's; then they train
    fresh = load_checkpoint(run / "last.safetensors")[0].state_dict()
    parts = [k for k, (t, c) in roles.items() if t == "valence" and c in ("adapters", "bn") and "running" not in k]
    start = {k: old[k.replace(".valence.", ".acted.")] for k in parts}
    if not copy:
        bns = {k: v for k, v in start.items() if roles[k][1] == "bn"}
        start.update({k: torch.ones_like(v) if k.endswith("weight") else torch.zeros_like(v) for k, v in bns.items()})
        assert not any(torch.equal(fresh[k], start[k]) for k in parts if roles[k][1] == "adapters")
    moved = [k for k in parts if not torch.equal(fresh[k], start[k])]
    assert parts and len(moved) > len(parts) // 2, (len(moved), len(parts))


def test_last_layer_trains_only_the_head(small_store, tmp_path):
    base, _ = train(_config(small_store, tmp_path / "a", ["arousal"], epochs=1, steps_per_epoch=2))
    cfg = _config(small_store, tmp_path / "b", ["arousal"], epochs=1, steps_per_epoch=3, mode="last-layer",
                  initial_model=str(base / "best.safetensors"), learning_rate=0.1)  # fmt: skip
    run, _ = train(cfg)
    before = load_checkpoint(base / "best.safetensors")[0].state_dict()
    after_model = load_checkpoint(run / "last.safetensors")[0]
    roles, after = after_model.tensor_roles(), after_model.state_dict()
    differ = {k for k in after if not torch.equal(before[k], after[k])}
    heads = {k for k, (_, c) in roles.items() if c == "head"}
    assert differ and differ <= heads, sorted(differ - heads)[:5]


def test_multi_task_keeps_class_weights_iwd_and_the_originals_epoch_length(small_store, tmp_path):
    import emonet
    from emonet.models import adapter_parameters
    from emonet.training.losses import balanced_class_weights
    from emonet.training.trainer import Trainer

    cfg = _config(small_store, tmp_path, ["valence", "acted"], balanced_weights=True, individual_weight_decay=True,
                  steps_per_epoch=None, epochs=None, batch_size=5)  # fmt: skip
    trainer = Trainer(cfg)
    store = emonet.open_store(small_store)
    for task in ("valence", "acted"):
        labels = store.partition(task, "train").label_ids
        want = balanced_class_weights(labels, len(store.classes(task)))
        assert trainer.losses[task].weighted and np.allclose(trainer.losses[task].weight.numpy(), want)
        factors = {f for ps, f in trainer.penalties[task] if ps and ps[0] is adapter_parameters(trainer.model, task)[0]}
        assert factors == {5e-3}  # fewer than 500 train items
    # an epoch is the original's 20 iterations (it was the largest train partition once)
    assert trainer.spe == 20 and cfg.epochs == 50
    for task in ("valence", "acted"):  # one optimiser per task: the shared weights and the task's parts
        assert [g["name"] for g in trainer.optimizers[task].param_groups] == ["shared", f"task:{task}"]
    shared = Trainer(cfg.replace(shared_optimizer=True, task_schedule="round-robin"))
    assert shared.spe == 20 and shared.optimizers["valence"] is shared.optimizers["acted"]
    assert [g["name"] for g in shared.optimizers["acted"].param_groups] == ["shared", "task:valence", "task:acted"]


@pytest.mark.parametrize("band_norm", [False, True], ids=["raw-log-mels", "band-norm"])
def test_the_runs_normalisation_travels_with_its_checkpoint_and_scores_as_trained(small_store, tmp_path, band_norm):
    from emonet.evaluation import evaluate
    from emonet.store import open_store

    run, results = train(_config(small_store, tmp_path, ["arousal"], epochs=1, steps_per_epoch=2, band_norm=band_norm))
    _, meta = load_checkpoint(run / "best.safetensors")
    stats = meta["norm_stats"]["arousal"]
    if band_norm:  # each band standardised with the train partition's statistics
        mean, std = open_store(small_store).normalization("arousal")
        assert np.allclose(stats["mean"], mean) and np.allclose(stats["std"], std)
    else:  # the original's raw log-mels: identity statistics
        assert stats == {"mean": [0.0] * 32, "std": [1.0] * 32}
    scored = evaluate(run / "best.safetensors", [small_store], ["arousal"], "test", write=False).tasks["arousal"]
    assert scored.metrics["confusion_matrix"] == results["arousal"]["test"]["confusion_matrix"]  # as the run scored it


def test_a_run_configured_before_band_norm_resumes_with_it():
    old = TrainConfig(stores=["s"], tasks=["acted"], experiments="e").to_dict()
    del old["band_norm"]  # config.yaml of a run from before the option: it standardised every band
    assert TrainConfig.from_run(old).band_norm is True
    assert TrainConfig.from_run({**old, "band_norm": False}).band_norm is False
