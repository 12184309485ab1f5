"""Self-describing checkpoints: safetensors weights + JSON metadata, no pickle anywhere.

The safetensors header's ``__metadata__`` holds one key, ``"emonet"``, a JSON document:
``format`` ("emonet-model" or "emonet-task"), ``format_version``, ``emonet_version``,
``config``, ``tasks`` (list of {name, classes}), ``feature_config``, ``norm_stats``, ``extra``;
task files add ``task`` and ``backbone`` (fingerprint of the shared tensors).
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_save

from emonet.models.config import ModelConfig
from emonet.models.network import EmoNet, build_model

FORMAT_VERSION = 1
MODEL_FORMAT = "emonet-model"
TASK_FORMAT = "emonet-task"
_META_KEY = "emonet"


def emonet_version() -> str:
    try:
        return importlib_metadata.version("emonet")
    except importlib_metadata.PackageNotFoundError:
        return "0+unknown"


# ------------------------------------------------------------------- metadata
def read_checkpoint_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed EmoNet metadata of a model or task file (tensors are not read)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get(_META_KEY)
    except FileNotFoundError:
        raise
    except Exception as exc:  # safetensors raises its own error types for foreign files
        raise ValueError(f"{path}: not an EmoNet checkpoint (not a safetensors file: {exc})") from None
    if raw is None:
        raise ValueError(f"{path}: not an EmoNet checkpoint (safetensors file without EmoNet metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: corrupt EmoNet metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") not in (MODEL_FORMAT, TASK_FORMAT):
        raise ValueError(f"{path}: not an EmoNet checkpoint (unknown format {meta.get('format')!r})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{path}: written by a newer EmoNet (format version {meta['format_version']} "
            f"> {FORMAT_VERSION}); upgrade emonet"
        )
    return meta


def _to_json(value: Any) -> Any:
    """JSON default hook: numpy arrays and tensors become lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dump_meta(meta: dict[str, Any]) -> str:
    try:
        return json.dumps(meta, default=_to_json, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint metadata is not JSON-safe: {exc}") from None


def _write_atomic(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    data = safetensors_save(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata={_META_KEY: _dump_meta(meta)}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _tasks_meta(tasks: dict[str, list[str]]) -> list[dict[str, Any]]:
    return [{"name": name, "classes": list(classes)} for name, classes in tasks.items()]


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:
        raise ValueError(f"{path}: unreadable tensors ({exc})") from None


# ---------------------------------------------------------------- full model
def save_checkpoint(
    path: str | os.PathLike,
    model: EmoNet,
    *,
    feature_config: dict | None = None,
    norm_stats: dict | None = None,
    extra: dict | None = None,
) -> Path:
    """Write the whole model to one ``.safetensors`` file (atomically) and return its path."""
    path = Path(path)
    meta = {
        "format": MODEL_FORMAT,
        "format_version": FORMAT_VERSION,
        "emonet_version": emonet_version(),
        "config": model.config.to_dict(),
        "tasks": _tasks_meta(model.tasks),
        "feature_config": feature_config,
        "norm_stats": norm_stats,
        "extra": extra or {},
    }
    _write_atomic(path, model.state_dict(), meta)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[EmoNet, dict[str, Any]]:
    """Rebuild the model from the file's metadata and weights; returns (model in eval mode, meta)."""
    path = Path(path)
    meta = read_checkpoint_metadata(path)
    if meta["format"] == TASK_FORMAT:
        raise ValueError(f"{path}: a task file, not a model; attach it with attach_task")
    try:
        config = ModelConfig.from_dict(meta["config"])
        tasks = {t["name"]: t["classes"] for t in meta["tasks"]}
        model = build_model(config, tasks)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: invalid EmoNet metadata ({exc})") from None
    state = _load_tensors(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ValueError(f"{path}: weights do not match the stored config ({' '.join(first[:2])})") from None
    return model.to(map_location).eval(), meta


# ------------------------------------------------------------- task parts
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
    """Write only ``task``'s own tensors (adapters, BNs, attention, head) with its metadata."""
    source_meta: dict[str, Any] = {}
    if isinstance(model_or_path, EmoNet):
        model = model_or_path
    else:
        model, source_meta = load_checkpoint(model_or_path)
    model._check_task(task)
    roles = model.tensor_roles()
    state = model.state_dict()
    tensors = {k: state[k] for k, (t, _) in roles.items() if t == task}
    norm_stats = source_meta.get("norm_stats")
    meta = {
        "format": TASK_FORMAT,
        "format_version": FORMAT_VERSION,
        "emonet_version": emonet_version(),
        "config": model.config.to_dict(),
        "task": task,
        "tasks": _tasks_meta({task: model.tasks[task]}),
        "backbone": backbone_fingerprint(model),
        "feature_config": source_meta.get("feature_config"),
        "norm_stats": norm_stats.get(task) if isinstance(norm_stats, dict) else None,
        "extra": {},
    }
    out_path = Path(out_path)
    _write_atomic(out_path, tensors, meta)
    return out_path


def attach_task(model: EmoNet, task_file: str | os.PathLike, *, force: bool = False) -> dict[str, Any]:
    """Add the task stored in ``task_file`` to ``model``; returns the file's metadata.

    Refused (ValueError) when the architecture or the shared tensors' structure differ, when
    the shared weights differ (unless ``force``), or when the model already has the task.
    """
    path = Path(task_file)
    meta = read_checkpoint_metadata(path)
    if meta["format"] != TASK_FORMAT:
        raise ValueError(f"{path}: a full model checkpoint, not a task file (see export_task)")
    task, classes = meta["task"], meta["tasks"][0]["classes"]
    theirs = ModelConfig.from_dict(meta["config"]).architecture_dict()
    ours = model.config.architecture_dict()
    if theirs != ours:
        diff = ", ".join(f"{k}={theirs[k]!r} (model: {ours[k]!r})" for k in ours if theirs[k] != ours[k])
        raise ValueError(f"{path}: task {task!r} was trained with a different architecture: {diff}")
    fingerprint = backbone_fingerprint(model)
    if meta["backbone"]["structure"] != fingerprint["structure"]:
        raise ValueError(f"{path}: task {task!r} belongs to a backbone of a different structure")
    if meta["backbone"]["weights"] != fingerprint["weights"] and not force:
        raise ValueError(
            f"{path}: task {task!r} was trained on a different backbone "
            "(shared weights differ); pass force=True to attach anyway"
        )
    if task in model.tasks:
        raise ValueError(f"{path}: the model already has a task named {task!r}")
    tensors = _load_tensors(path)
    model.add_task(task, classes)
    expected = {k for k, (t, _) in model.tensor_roles().items() if t == task}
    if set(tensors) != expected:
        model.remove_task(task)
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise ValueError(f"{path}: tensors do not match task {task!r} (missing {missing[:3]}, extra {extra[:3]})")
    state = model.state_dict()
    with torch.no_grad():
        for key, value in tensors.items():
            state[key].copy_(value)
    return meta
