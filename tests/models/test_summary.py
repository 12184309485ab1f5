"""Architecture summary: shared vs per-task parameters and the per-task overhead."""

import pytest
from rich.console import Console

from emonet.cli.model_summary import render_model_summary
from emonet.models import (
    ModelConfig,
    build_model,
    describe_checkpoint,
    describe_model,
    export_task,
    save_checkpoint,
)

EMO = {"emo": ["anger", "happiness", "neutral", "sadness"]}


def _render(info) -> str:
    console = Console(record=True, width=100)
    console.print(render_model_summary(info))
    return console.export_text()


@pytest.mark.parametrize("kind", ["cnn", "rnn", "fusion"])
def test_counts_add_up(tiny, tasks, kind):
    model = build_model(tiny(model=kind), tasks)
    info = describe_model(model)
    assert info["total"] == sum(p.numel() for p in model.parameters())
    assert info["shared"]["total"] + sum(t["total"] for t in info["tasks"].values()) == info["total"]
    for t in info["tasks"].values():
        assert t["total"] == t["adapters"] + t["bn"] + t["norm"] + t["attention"] + t["head"]
        assert (t["norm"] > 0) == (kind != "cnn") and (t["bn"] > 0) == (kind != "rnn")  # rnn: LayerNorm only
        assert t["overhead_pct"] == pytest.approx(100 * t["total"] / info["shared"]["total"])


def test_default_cnn_overhead():
    """The original's widths (64/128/256 after a 32-channel pre-conv): 2,709,792 shared 3x3
    weights; parallel 1x1 adapters are 1/9 of them: 11.1% per task."""
    info = describe_model(build_model(ModelConfig(), EMO))
    shared, task = info["shared"], info["tasks"]["emo"]
    assert shared["total"] == shared["conv"] == 2_709_792
    assert task["adapters"] == 301_088
    assert task["adapter_pct_of_layers"] == pytest.approx(100 / 9, rel=0.01)
    assert 14.0 < task["overhead_pct"] < 16.0  # adapters + BNs + attention + head
    series = describe_model(build_model(ModelConfig(adapter_type="series"), EMO))["tasks"]["emo"]
    assert series["adapters"] > task["adapters"]  # series adapters are out x out, parallel in x out


def test_exported_task_of_default_model_is_small(tmp_path):
    model = build_model(ModelConfig(), EMO)
    full = save_checkpoint(tmp_path / "m.safetensors", model)
    part = export_task(model, "emo", tmp_path / "emo.safetensors")
    assert part.stat().st_size < 0.2 * full.stat().st_size


def test_render_and_describe_checkpoint(tmp_path, tiny, tasks):
    model = build_model(tiny(), tasks)
    text = _render(describe_model(model))
    assert "shared" in text and "adapters" in text and "overhead" in text
    assert all(name in text for name in tasks)
    path = save_checkpoint(tmp_path / "m.safetensors", model, feature_config={"n_mels": 32}, extra={"epoch": 3})
    info = describe_checkpoint(path)
    assert info["format"] == "emonet-model" and info["file_bytes"] == path.stat().st_size
    assert info["feature_config"] == {"n_mels": 32} and info["extra"] == {"epoch": 3}
    assert info["total"] == describe_model(model)["total"]
    assert "EmoNet cnn" in _render(info)

    task_info = describe_checkpoint(export_task(model, "b", tmp_path / "b.safetensors"))
    assert task_info["task"] == "b" and task_info["task_parameters"] == describe_model(model)["tasks"]["b"]["total"]
    assert "angry" in _render(task_info)
