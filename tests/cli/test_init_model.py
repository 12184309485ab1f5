"""`emonet init-model` and `emonet info MODEL`: the original EmoNet's model options build real
models from a store's tasks and save self-describing checkpoints."""

import json

import pytest
import torch

from emonet.cli.app import main
from emonet.models import load_checkpoint
from emonet.store import open_store

pytestmark = pytest.mark.slow  # builds models from a trained store


def test_init_model_from_store_is_self_describing(demo_store, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert main(["init-model", str(out), "--store", str(demo_store), "--mode", "adapters", "-N", "1", "-nf", "8"]) == 0
    assert "wrote" in capsys.readouterr().out
    model, meta = load_checkpoint(out)
    store = open_store(demo_store)
    assert list(model.tasks) == store.tasks
    assert all(model.tasks[t] == store.classes(t) for t in store.tasks)
    assert meta["feature_config"] == dict(store.feature_config)
    n_mels = store.feature_config["n_mels"]  # the original's raw log-mels: identity statistics
    assert meta["norm_stats"]["acted"] == {"mean": [0.0] * n_mels, "std": [1.0] * n_mels}
    assert meta["extra"]["mode"] == "adapters" and meta["extra"]["band_norm"] is False
    assert model.config.n_mels == store.feature_config["n_mels"] and model.config.n_blocks == 1

    assert main(["info", str(out), "--json"]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert set(desc["tasks"]) == set(store.tasks)
    assert desc["tasks"]["acted"]["overhead_pct"] > 0 and desc["shared"]["total"] > 0
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "acted" in text and "shared" in text.lower()


def test_init_model_band_norm_records_the_store_statistics(demo_store, tmp_path):
    out = tmp_path / "m.safetensors"
    argv = ["init-model", str(out), "--store", str(demo_store), "-N", "1", "-nf", "8", "--band-norm"]
    assert main(argv) == 0
    meta = load_checkpoint(out)[1]
    mean, std = open_store(demo_store).normalization("acted")
    assert torch.allclose(torch.tensor(meta["norm_stats"]["acted"]["mean"]), torch.from_numpy(mean))
    assert torch.allclose(torch.tensor(meta["norm_stats"]["acted"]["std"]), torch.from_numpy(std))
    assert meta["extra"]["band_norm"] is True


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


def _init(demo_store, out, *args):
    return main(["init-model", str(out), "--store", str(demo_store), *args])


def test_architecture_options_that_differ_from_the_initial_model_are_refused(demo_store, tmp_path, capsys):
    base = tmp_path / "base.safetensors"
    assert _init(demo_store, base, "--tasks", "acted", "--mode", "scratch", "-N", "1", "-nf", "4") == 0
    capsys.readouterr()
    out = tmp_path / "m.safetensors"
    args = ["--mode", "finetune", "-im", str(base), "-nf", "32", "-N", "3", "-c", "avgpool", "--tasks", "arousal"]
    assert _init(demo_store, out, *args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "base.safetensors" in err, err
    for both in ("-N/--number-of-resnet-blocks 3 (initial model: 1)", "-nf/--number-of-filters 32 (initial model: 4)"):
        assert both in err
    assert "-c/--classifier avgpool (initial model: attention)" in err and not out.exists()
    # options equal to the initial model's, or not given, are fine; dropout overrides and says so
    assert (
        _init(demo_store, out, "--mode", "finetune", "-im", str(base), "-nf", "4", "-do", "0.2", "-t", "arousal") == 0
    )
    assert "note: -do/--dropout 0.2,0.2 replaces the initial model's 0.0,0.5" in capsys.readouterr().out
    model, meta = load_checkpoint(out)
    assert model.config.dropout == (0.2, 0.2) and model.config.n_filters == 4
    assert meta["training"] == {"mode": "finetune", "tasks": ["arousal"], "pretrained": True}


def test_options_a_model_would_ignore_are_refused(demo_store, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    cases = [
        (
            ["--model", "rnn", "-N", "3"],
            "-N/--number-of-resnet-blocks: option(s) of the cnn, which --model rnn does not have",
        ),
        (["--model", "rnn", "-do", "0.1"], "-do/--dropout: option(s) of the cnn"),
        (["--model", "rnn", "--adapter-type", "series"], "model rnn has bottleneck adapters"),
        (["-sfl", "-c", "avgpool"], "classifier avgpool has none"),
    ]
    for extra, needle in cases:
        assert _init(demo_store, out, *extra) == 2, extra
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, (extra, err)
    assert not out.exists()
    assert _init(demo_store, out, "--model", "rnn", "-c", "avgpool") == 0  # what rnn uses is accepted


def test_initial_model_that_is_a_folder_is_one_line(demo_store, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert _init(demo_store, out, "--mode", "adapters", "-im", str(demo_store)) == 2
    err = capsys.readouterr().err.strip()
    assert f"-im/--initial-model {demo_store}: is a folder, not a checkpoint file" in err and len(err.splitlines()) == 1


def test_avgpool_takes_its_input_length_from_w(demo_store, tmp_path, capsys):
    """-c avgpool is the original's 8x8 pool over the final map, flattened: -w fixes its size."""
    out = tmp_path / "m.safetensors"
    for extra, needle in (
        (["-c", "avgpool"], "-c avgpool flattens the 8x8-pooled map of a fixed-size input: give a window (-w"),
        (["-w", "4"], "-w/--window sizes the input of -c avgpool; -c attention takes any length: drop -w"),
    ):
        assert _init(demo_store, out, *extra) != 0, extra
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, (extra, err)
    assert not out.exists()
    assert _init(demo_store, out, "-c", "avgpool", "-w", "4", "-t", "acted") == 0
    model, _ = load_checkpoint(out)
    assert model.config.input_frames == 126 and model.feature_dim == 1024  # 4 s at 128 mels


@pytest.mark.parametrize("option", [None, "--copy-task-parts", "--identity-adapters"])
def test_init_model_takes_the_new_task_improvements_as_train_does(demo_store, tmp_path, option):
    """A new task added with -m adapters -im: he_normal adapters (the original's), the source
    task's adapters (--copy-task-parts) or zero kernels (--identity-adapters)."""
    base, new = tmp_path / "base.safetensors", tmp_path / "new.safetensors"
    assert _init(demo_store, base, "--tasks", "acted", "--mode", "scratch", "-N", "1", "-nf", "4") == 0
    extra = [option] if option else []
    assert _init(demo_store, new, "--tasks", "arousal", "--mode", "adapters", "-im", str(base), *extra) == 0
    model, meta = load_checkpoint(new)
    state = model.state_dict()
    adapters = [k for k in state if ".adapter.arousal." in k]
    assert adapters
    for key in adapters:
        source = state[key.replace(".arousal.", ".acted.")]
        if option == "--copy-task-parts":
            assert torch.equal(state[key], source), key
        elif option == "--identity-adapters":
            assert not state[key].any(), key
        else:
            assert state[key].std() > 0 and not torch.equal(state[key], source), key
