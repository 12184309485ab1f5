"""Task files: one task's own tensors (adapters, norms, attention, head) exported from a model
and attached to another model with the same shared backbone."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from emonet.errors import CheckpointError, ModelError
from emonet.models.checkpoint import (
    MODEL_FORMAT,
    TASK_FORMAT,
    base_meta,
    checkpoint_config,
    load_model,
    load_tensors,
    read_checkpoint_metadata,
    write_checkpoint,
)
from emonet.models.feature_match import check_same_features
from emonet.models.network import EmoNet


def backbone_fingerprint(model: EmoNet) -> dict[str, str]:
    """Hashes of the shared tensors: ``structure`` (names, shapes, dtypes) and ``weights`` (values)."""
    roles = model.tensor_roles()
    state = model.state_dict()
    structure, weights = hashlib.sha256(), hashlib.sha256()
    for key in sorted(k for k, (task, _) in roles.items() if task is None):
        tensor = state[key].detach().cpu().contiguous()
        structure.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        weights.update(key.encode())
        weights.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return {"structure": structure.hexdigest(), "weights": weights.hexdigest()}


def export_task(model_or_path: EmoNet | str | os.PathLike, task: str, out_path: str | os.PathLike) -> Path:
    """Write only ``task``'s own tensors with its metadata (classes, architecture, backbone
    fingerprint, the model's feature config and the task's normalisation statistics).

    Args:
        model_or_path: a model, or the path of a model checkpoint.
        task: the task to export.
        out_path: the task file to write.

    Returns:
        ``out_path`` as a Path.
    """
    model = model_or_path if isinstance(model_or_path, EmoNet) else load_model(model_or_path, option="model")[0]
    model._check_task(task)
    roles = model.tensor_roles()
    state = model.state_dict()
    tensors = {k: state[k] for k, (t, _) in roles.items() if t == task}
    meta = {
        **base_meta(TASK_FORMAT, model, {task: model.tasks[task]}),
        "task": task,
        "backbone": backbone_fingerprint(model),
        "feature_config": model.feature_config,
        "norm_stats": model.norm_stats.get(task),
        "extra": {},
    }
    out_path = Path(out_path)
    write_checkpoint(out_path, tensors, meta)
    return out_path


def attach_task(model: EmoNet, task_file: str | os.PathLike, *, force: bool = False) -> dict[str, Any]:
    """Add the task stored in ``task_file`` to ``model`` (with its normalisation statistics).

    Args:
        model: the model to extend.
        task_file: a file written by ``export_task``.
        force: attach even when the shared weights differ (same structure).

    Returns:
        The task file's metadata.

    Raises:
        CheckpointError: not a task file, or its tensors do not match the task's parts.
        ModelError: another architecture, backbone structure or feature config; other shared
            weights (unless ``force``); a task of that name exists.
    """
    path = Path(task_file)
    meta = read_checkpoint_metadata(path)
    if meta["format"] == MODEL_FORMAT:
        raise CheckpointError(f"{path}: a full model checkpoint, not a task file (write one with 'emonet task export')")
    task, classes = meta["task"], meta["tasks"][0]["classes"]
    _check_compatible(model, path, meta, force)
    if task in model.tasks:
        raise ModelError(f"{path}: the model already has a task named {task!r}")
    tensors = load_tensors(path, meta)
    model.add_task(task, classes)
    try:
        _copy_task_tensors(model, task, tensors, path)
    except CheckpointError:
        model.remove_task(task)
        raise
    model.norm_stats[task] = meta.get("norm_stats")
    return meta


def _check_compatible(model: EmoNet, path: Path, meta: dict[str, Any], force: bool) -> None:
    task = meta["task"]
    theirs = checkpoint_config(path, meta).architecture_dict()
    ours = model.config.architecture_dict()
    if theirs != ours:
        diff = ", ".join(f"{k}={theirs[k]!r} (model: {ours[k]!r})" for k in ours if theirs[k] != ours[k])
        raise ModelError(f"{path}: task {task!r} was trained with a different architecture: {diff}")
    fingerprint = backbone_fingerprint(model)
    if meta["backbone"]["structure"] != fingerprint["structure"]:
        raise ModelError(f"{path}: task {task!r} belongs to a backbone of a different structure")
    if meta["backbone"]["weights"] != fingerprint["weights"] and not force:
        raise ModelError(
            f"{path}: task {task!r} was trained on a different backbone "
            "(shared weights differ); attach it to the model it was exported from or one with the same shared weights"
        )
    if model.feature_config is not None and meta.get("feature_config") is not None:
        check_same_features(meta["feature_config"], model.feature_config, str(path), "the model")


def _copy_task_tensors(model: EmoNet, task: str, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Copy a task file's tensors into the task's fresh parts after checking names, shapes and dtypes."""
    state = model.state_dict()
    expected = {k for k, (t, _) in model.tensor_roles().items() if t == task}
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise CheckpointError(f"{path}: tensors do not match task {task!r} (missing {missing[:3]}, extra {extra[:3]})")
    for key, value in tensors.items():
        if value.shape != state[key].shape or value.dtype != state[key].dtype:
            raise CheckpointError(
                f"{path}: tensor {key} is {value.dtype} {list(value.shape)}, "
                f"the model needs {state[key].dtype} {list(state[key].shape)}"
            )
    with torch.no_grad():
        for key, value in tensors.items():
            state[key].copy_(value)
