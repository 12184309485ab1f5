"""Checkpoints: one safetensors file, JSON metadata, no pickle; task export/attach."""

import json
import pickle
import struct
import zipfile

import pytest
import torch
from safetensors.torch import load_file, save_file

from emonet.errors import CheckpointError, ModelError
from emonet.models import (
    attach_task,
    build_model,
    export_task,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
    setup_model,
)
from emonet.models.checkpoint import tensors_sha256

FEATURES = {"sample_rate": 16000, "n_fft": 1024, "hop_length": 512, "n_mels": 32, "f_min": 20.0}
NORM = {"a": {"mean": [0.5] * 32, "std": [2.0] * 32}, "b": None}


@pytest.fixture
def trained(tiny, tasks, randomize):
    def make(**config):
        return randomize(build_model(tiny(**config), tasks), seed=3).eval()

    return make


@pytest.mark.parametrize(
    "kind, adapter_type, classifier",
    [
        ("cnn", "parallel", "attention"),
        ("cnn", "series", "meanpool"),
        ("cnn", "none", "attention"),
        ("rnn", "parallel", "attention"),
        ("fusion", "series", "attention"),
    ],
)
def test_round_trip_reproduces_outputs_and_metadata(tmp_path, trained, make_batch, kind, adapter_type, classifier):
    share = classifier == "attention"  # -sfl needs the attention top
    model = trained(model=kind, adapter_type=adapter_type, classifier=classifier, share_feature_layer=share)
    path = save_checkpoint(
        tmp_path / "model.safetensors",
        model,
        feature_config=FEATURES,
        norm_stats=NORM,
        extra={"best_uar": 0.61},
    )
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp file left behind
    loaded, meta = load_checkpoint(path)
    assert not loaded.training
    x, lengths = make_batch()
    with torch.no_grad():
        for task in model.tasks:
            assert torch.equal(loaded(x, lengths, task), model(x, lengths, task))
    assert loaded.config == model.config
    assert list(loaded.tasks.items()) == list(model.tasks.items())  # task and label order kept
    assert meta["feature_config"] == FEATURES and meta["norm_stats"] == NORM
    assert meta["extra"] == {"best_uar": 0.61}
    assert meta["format"] == "emonet-model" and meta["format_version"] == 2
    assert isinstance(meta["emonet_version"], str) and meta["emonet_version"]
    assert read_checkpoint_metadata(path) == meta


def test_file_is_plain_safetensors_without_pickle(tmp_path, trained):
    path = save_checkpoint(tmp_path / "m.safetensors", trained())
    raw = path.read_bytes()
    header_len = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + header_len])
    assert json.loads(header["__metadata__"]["emonet"])["tasks"][0] == {
        "name": "a",
        "classes": ["neg", "neu", "pos"],
    }
    assert not zipfile.is_zipfile(path)  # torch.save files are zip archives holding pickles
    # No pickle anywhere: the file starts with the safetensors header length, not a pickle's
    # protocol mark, so the unpicklers stop at the first bytes (not later, at a zip or a tensor).
    # How pickle fails depends on which opcode the length's low byte is: a 12,360-byte header
    # (torch 2.11) starts with 'H', no opcode; 12,368 bytes (torch 2.14) with 'P', a persistent id.
    assert raw[0] != pickle.PROTO[0]
    with pytest.raises((pickle.UnpicklingError, ValueError, EOFError)):
        pickle.loads(raw)
    try:
        loaded = torch.load(path, weights_only=True)
    except pickle.UnpicklingError as exc:  # torch 2.11: the weights-only unpickler refuses the first byte
        assert f"Unsupported operand {raw[0]}" in str(exc)
    else:  # torch 2.14 reads a safetensors file itself, without unpickling
        assert set(loaded) == set(trained().state_dict())
    tensors = load_file(str(path))
    assert set(tensors) == set(trained().state_dict())


def test_metadata_serialises_numpy_and_tensors(tmp_path, trained):
    import numpy as np

    stats = {"a": {"mean": np.zeros(3), "std": torch.ones(3)}}
    path = save_checkpoint(tmp_path / "m.safetensors", trained(), norm_stats=stats)
    assert read_checkpoint_metadata(path)["norm_stats"] == {"a": {"mean": [0.0] * 3, "std": [1.0] * 3}}
    with pytest.raises(ValueError, match="not JSON-safe"):
        save_checkpoint(tmp_path / "bad.safetensors", trained(), extra={"f": object()})
    assert not (tmp_path / "bad.safetensors").exists()


def test_non_emonet_files_are_refused_clearly(tmp_path, trained):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"definitely not safetensors")
    with pytest.raises(ValueError, match=r"junk.bin: not an EmoNet checkpoint"):
        load_checkpoint(junk)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"foreign.safetensors: not an EmoNet checkpoint \(safetensors file without"):
        read_checkpoint_metadata(foreign)
    pickled = tmp_path / "model.pt"
    torch.save(trained().state_dict(), pickled)
    with pytest.raises(ValueError, match="model.pt: not an EmoNet checkpoint"):
        load_checkpoint(pickled)


def test_mismatched_weights_are_refused(tmp_path, trained):
    path = save_checkpoint(tmp_path / "m.safetensors", trained())
    meta = read_checkpoint_metadata(path)
    meta["config"]["n_filters"] = 8
    save_file(
        {k: v.contiguous() for k, v in load_file(str(path)).items()},
        str(tmp_path / "x.safetensors"),
        metadata={"emonet": json.dumps(meta)},
    )
    with pytest.raises(ValueError, match="x.safetensors: weights do not match the stored config"):
        load_checkpoint(tmp_path / "x.safetensors")


@pytest.mark.parametrize("kind", ["cnn", "rnn", "fusion"])
def test_export_attach_round_trip(tmp_path, trained, make_batch, kind):
    model = trained(model=kind)
    full = save_checkpoint(tmp_path / "full.safetensors", model, feature_config=FEATURES, norm_stats=NORM)
    task_file = export_task(full, "a", tmp_path / "a.safetensors")  # from a path
    assert task_file.stat().st_size < 0.5 * full.stat().st_size
    tensors = load_file(str(task_file))
    assert all(".a." in k for k in tensors) and any(k.startswith("heads.a.") for k in tensors)
    meta = read_checkpoint_metadata(task_file)
    assert meta["task"] == "a" and meta["norm_stats"] == NORM["a"] and meta["feature_config"] == FEATURES

    backbone, _ = load_checkpoint(full)
    backbone.remove_task("a")
    assert "a" not in backbone.tasks and not any(".a." in k for k in backbone.state_dict())
    attach_task(backbone, task_file)
    backbone.eval()
    x, lengths = make_batch()
    with torch.no_grad():
        assert torch.equal(backbone(x, lengths, "a"), model(x, lengths, "a"))
    assert backbone.tasks["a"] == model.tasks["a"]


def test_attach_refuses_other_backbones_and_duplicates(tmp_path, tiny, tasks, trained, randomize):
    model = trained()
    task_file = export_task(model, "b", tmp_path / "b.safetensors")
    with pytest.raises(ValueError, match="already has a task named 'b'"):
        attach_task(model, task_file)

    other = randomize(build_model(tiny(), {"a": tasks["a"]}), seed=42)  # same shapes, other weights
    with pytest.raises(ValueError, match=r"b.safetensors: task 'b' was trained on a different backbone"):
        attach_task(other, task_file)
    assert "b" not in other.tasks
    attach_task(other, task_file, force=True)
    assert "b" in other.tasks

    wider = build_model(tiny(n_filters=8), {"a": tasks["a"]})
    with pytest.raises(ValueError, match=r"different architecture: n_filters=4 \(model: 8\)"):
        attach_task(wider, task_file, force=True)

    full = save_checkpoint(tmp_path / "full.safetensors", model)
    with pytest.raises(ValueError, match="a full model checkpoint, not a task file"):
        attach_task(other, full)
    with pytest.raises(
        ValueError, match=r"b.safetensors: a task pack \(task 'b'\), not a model; attach it to its model with"
    ):
        load_checkpoint(task_file)


def _rewrite(path, out, change_meta=None, change_tensors=None):
    """Copy a checkpoint with its metadata and/or tensors changed (as a foreign writer might)."""
    meta, tensors = read_checkpoint_metadata(path), load_file(str(path))
    if change_meta:
        change_meta(meta)
    if change_tensors:
        change_tensors(tensors)
        meta["tensors_sha256"] = tensors_sha256(tensors)  # a consistent file, only other tensors
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out), metadata={"emonet": json.dumps(meta)})
    return out


def test_missing_config_key_and_old_format_are_refused(tmp_path, trained):
    path = save_checkpoint(tmp_path / "m.safetensors", trained())
    lacking = _rewrite(path, tmp_path / "lacking.safetensors", lambda m: m["config"].pop("widen_factor"))
    with pytest.raises(
        CheckpointError, match=r"lacking.safetensors: invalid model config .*lacks key\(s\): widen_factor"
    ):
        load_checkpoint(lacking)
    old = _rewrite(path, tmp_path / "v1.safetensors", lambda m: m.update(format_version=1))
    with pytest.raises(CheckpointError, match=r"v1.safetensors: format version 1 holds an earlier emonet network"):
        load_checkpoint(old)


def test_norm_stats_feature_config_and_training_travel_with_the_model(tmp_path, trained, tiny, tasks):
    model = setup_model("adapters", tasks, config=tiny())
    model.feature_config, model.norm_stats = FEATURES, {"a": NORM["a"]}
    path = save_checkpoint(tmp_path / "m.safetensors", model, norm_stats={"b": {"mean": [1.0], "std": [1.0]}})
    loaded, meta = load_checkpoint(path)
    assert meta["training"] == {"mode": "adapters", "tasks": ["a", "b"], "pretrained": False}
    assert loaded.training_record == meta["training"] and loaded.feature_config == FEATURES
    assert loaded.norm_stats == {"a": NORM["a"], "b": {"mean": [1.0], "std": [1.0]}}  # given stats merge over
    # export from the model object carries them; attach brings the task's statistics along
    task_file = export_task(loaded, "a", tmp_path / "a.safetensors")
    task_meta = read_checkpoint_metadata(task_file)
    assert task_meta["feature_config"] == FEATURES and task_meta["norm_stats"] == NORM["a"]
    loaded.remove_task("a")
    assert "a" not in loaded.norm_stats
    attach_task(loaded, task_file)
    assert loaded.norm_stats["a"] == NORM["a"]
    loaded.remove_task("a")
    loaded.feature_config = {**FEATURES, "hop_length": 256}
    with pytest.raises(
        ModelError, match=r"a.safetensors: was made for other features than the model \(hop_length 512 vs 256"
    ):
        attach_task(loaded, task_file)


def test_attach_checks_tensor_shapes_and_dtypes(tmp_path, trained):
    model = trained()
    task_file = export_task(model, "b", tmp_path / "b.safetensors")
    model.remove_task("b")
    key = "heads.b.fc1.weight"
    halved = _rewrite(task_file, tmp_path / "f16.safetensors", change_tensors=lambda t: t.update({key: t[key].half()}))
    with pytest.raises(CheckpointError, match=r"tensor heads.b.fc1.weight is torch.float16 .* needs torch.float32"):
        attach_task(model, halved)
    cut = _rewrite(task_file, tmp_path / "cut.safetensors", change_tensors=lambda t: t.update({key: t[key][:-1]}))
    with pytest.raises(CheckpointError, match=r"tensor heads.b.fc1.weight is torch.float32 \[\d+, \d+\], the model"):
        attach_task(model, cut)
    assert "b" not in model.tasks and not any(".b." in k for k in model.state_dict())  # nothing half-attached


def test_a_flipped_byte_is_caught(tmp_path, trained):
    model = trained()
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    task_file = export_task(model, "a", tmp_path / "a.safetensors")
    model.remove_task("a")
    for target, load in ((path, load_checkpoint), (task_file, lambda p: attach_task(model, p))):
        raw = bytearray(target.read_bytes())
        raw[-5] ^= 0x10  # in the last tensor's bytes
        target.write_bytes(bytes(raw))
        with pytest.raises(CheckpointError, match=rf"{target.name}: corrupt: the tensors do not match the checksum"):
            load(target)
    raw = bytearray(path.read_bytes())
    raw[12] ^= 0x20  # inside the JSON header
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"m.safetensors: (not an EmoNet checkpoint|corrupt EmoNet metadata)"):
        load_checkpoint(path)
    assert "a" not in model.tasks
