"""`emonet init-model` and `emonet info MODEL`: the seed's model options build real
models from a store's tasks and save self-describing checkpoints."""

import json

import torch

from emonet.cli.app import main
from emonet.models import load_checkpoint
from emonet.store import open_store


def test_init_model_from_store_is_self_describing(demo_store, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert main(["init-model", str(out), "--store", str(demo_store), "--mode", "adapters", "-N", "1", "-nf", "8"]) == 0
    assert "wrote" in capsys.readouterr().out
    model, meta = load_checkpoint(out)
    store = open_store(demo_store)
    assert list(model.tasks) == store.tasks
    assert all(model.tasks[t] == store.classes(t) for t in store.tasks)
    assert meta["feature_config"] == dict(store.feature_config)
    mean, std = store.normalization("acted")
    assert torch.allclose(torch.tensor(meta["norm_stats"]["acted"]["mean"]), torch.from_numpy(mean))
    assert meta["extra"]["mode"] == "adapters"
    assert model.config.n_mels == store.feature_config["n_mels"] and model.config.n_blocks == 1

    assert main(["info", str(out), "--json"]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert set(desc["tasks"]) == set(store.tasks)
    assert desc["tasks"]["acted"]["overhead_pct"] > 0 and desc["shared"]["total"] > 0
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "acted" in text and "shared" in text.lower()


def test_seed_model_options_reach_the_config(demo_store, tmp_path):
    out = tmp_path / "m.safetensors"
    args = [
        "init-model",
        str(out),
        "--store",
        str(demo_store),
        "--tasks",
        "acted",
        "arousal",
        "-N",
        "1",
        "-nf",
        "4",
        "-wf",
        "2",
        "-do",
        "0.1,0.3",
        "-c",
        "FCNAttention",
        "-sfl",
        "--adapter-type",
        "series",
        "--model",
        "fusion",
    ]
    assert main(args) == 0
    model, _ = load_checkpoint(out)
    c = model.config
    assert (c.model, c.n_blocks, c.n_filters, c.widen_factor, c.dropout) == ("fusion", 1, 4, 2, (0.1, 0.3))
    assert (c.classifier, c.share_feature_layer, c.adapter_type) == ("attention", True, "series")
    assert list(model.tasks) == ["acted", "arousal"]


def test_adapters_mode_from_initial_model_keeps_its_shared_weights(demo_store, tmp_path):
    base, new = tmp_path / "base.safetensors", tmp_path / "new.safetensors"
    assert (
        main(
            [
                "init-model",
                str(base),
                "--store",
                str(demo_store),
                "--tasks",
                "acted",
                "--mode",
                "scratch",
                "-N",
                "1",
                "-nf",
                "4",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "init-model",
                str(new),
                "--store",
                str(demo_store),
                "--tasks",
                "arousal",
                "--mode",
                "adapters",
                "-im",
                str(base),
            ]
        )
        == 0
    )
    m0, _ = load_checkpoint(base)
    m1, _ = load_checkpoint(new)
    assert set(m1.tasks) == {"acted", "arousal"} and m1.config.adapter_type == "parallel"
    s0, s1 = m0.state_dict(), m1.state_dict()
    shared = [k for k in s0 if k.startswith("cnn.") and ".conv.weight" in k]
    assert shared and all(torch.equal(s0[k], s1[k]) for k in shared)


def test_init_model_errors_are_one_line(demo_store, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    cases = [
        (["--mode", "finetune"], "needs an initial model"),
        (["-do", "lots"], "--dropout 'lots'"),
        (["--tasks", "nope"], "not in the store"),
        (["-c", "transformer"], "classifier"),
        (["-im", str(tmp_path / "missing.safetensors"), "--mode", "adapters"], "missing.safetensors"),
    ]
    for extra, needle in cases:
        assert main(["init-model", str(out), "--store", str(demo_store), *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, (extra, err)
    assert not out.exists()
    out.write_bytes(b"not a model")
    assert main(["info", str(out)]) == 2
    assert "not an EmoNet checkpoint" in capsys.readouterr().err
    assert main(["init-model", str(out), "--store", str(demo_store)]) == 2
    assert "exists" in capsys.readouterr().err
