"""Architecture summary: shared vs per-task parameters and the per-task overhead."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from safetensors import safe_open

from emonet.models.checkpoint import TASK_FORMAT, load_model, read_checkpoint_metadata
from emonet.models.network import EmoNet
from emonet.models.task_parts import CATEGORIES

_BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def describe_model(model: EmoNet) -> dict[str, Any]:
    """Parameter counts (trainable tensors only, no BN running stats).

    ``shared.layers`` are the shared conv (cnn) and recurrent (rnn) weights the adapters
    attach to. Per task: ``overhead_pct`` = task parameters / all shared parameters and
    ``adapter_pct_of_layers`` = adapter parameters / ``shared.layers``.
    """
    roles = model.tensor_roles()
    shared: dict[str, int] = {"total": 0, "conv": 0, "rnn": 0, "attention": 0, "other": 0}
    tasks: dict[str, dict[str, Any]] = {
        t: {"classes": list(c), "total": 0, **{cat: 0 for cat in CATEGORIES}} for t, c in model.tasks.items()
    }
    for name, param in model.named_parameters():
        task, kind = roles[name]
        entry = shared if task is None else tasks[task]
        entry["total"] += param.numel()
        entry[kind] += param.numel()
    shared["layers"] = shared["conv"] + shared["rnn"]
    for entry in tasks.values():
        entry["overhead_pct"] = 100.0 * entry["total"] / max(shared["total"], 1)
        entry["adapter_pct_of_layers"] = 100.0 * entry["adapters"] / max(shared["layers"], 1)
    total = shared["total"] + sum(e["total"] for e in tasks.values())
    return {
        "model": model.config.model,
        "config": model.config.to_dict(),
        "total": total,
        "shared": shared,
        "tasks": tasks,
    }


def describe_checkpoint(path: str | os.PathLike, option: str = "PATH") -> dict[str, Any]:
    """``describe_model`` of a saved model plus its metadata; for a task file, its metadata
    and parameter count. A model is loaded by :func:`emonet.models.checkpoint.load_model`
    (its messages name ``option``, the command's argument)."""
    path = Path(path)
    meta = read_checkpoint_metadata(path)
    file_info = {
        "path": str(path),
        "file_bytes": path.stat().st_size,
        "format": meta["format"],
        "format_version": meta.get("format_version"),
        "emonet_version": meta.get("emonet_version"),
        "feature_config": meta.get("feature_config"),
        "norm_stats": meta.get("norm_stats"),
        "training": meta.get("training"),
        "extra": meta.get("extra", {}),
    }
    if meta["format"] == TASK_FORMAT:
        with safe_open(str(path), framework="pt") as handle:
            count = sum(_numel(handle.get_slice(k).get_shape()) for k in handle.keys() if not k.endswith(_BN_BUFFERS))
        return {
            **file_info,
            "task": meta["task"],
            "classes": meta["tasks"][0]["classes"],
            "config": meta["config"],
            "backbone": meta["backbone"],
            "task_parameters": count,
        }
    model, _ = load_model(path, option=option)
    return {**describe_model(model), **file_info}


def _numel(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
