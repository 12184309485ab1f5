"""Self-describing checkpoints: safetensors weights + JSON metadata, no pickle anywhere.

The safetensors header's ``__metadata__`` holds one key, ``"emonet"``, a JSON document:
``format`` ("emonet-model" or "emonet-task"), ``format_version``, ``emonet_version``,
``config`` (every architecture key), ``tasks`` (list of {name, classes}), ``feature_config``,
``norm_stats`` (task -> {mean, std}), ``tensors_sha256`` (checksum of the tensors),
``training`` ({mode, tasks, pretrained} of the last ``apply_mode``, or null), ``extra``;
task files add ``task`` and ``backbone`` (fingerprint of the shared tensors), see
``emonet.models.task_files``.

Format version 2 is the network with the original EmoNet's shape (stages 2f/4f/8f); version-1 files hold the
earlier shape and are refused with a message saying so.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_save

import emonet
from emonet.errors import CheckpointError, ConfigError, EmoNetError
from emonet.models.config import ModelConfig
from emonet.models.network import EmoNet, build_model
from emonet.utils.fs import atomic_write_bytes

FORMAT_VERSION = 2
MODEL_FORMAT = "emonet-model"
TASK_FORMAT = "emonet-task"
_META_KEY = "emonet"


# ------------------------------------------------------------------- metadata
def read_checkpoint_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed EmoNet metadata of a model or task file (tensors are not read).

    Raises CheckpointError for a file that is not an EmoNet checkpoint of a format version
    this EmoNet reads; FileNotFoundError when there is no file.
    """
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get(_META_KEY)
    except FileNotFoundError:
        raise
    except Exception as exc:  # safetensors raises its own error types for foreign files
        raise CheckpointError(f"{path}: not an EmoNet checkpoint (not a safetensors file: {exc})") from None
    if raw is None:
        raise CheckpointError(f"{path}: not an EmoNet checkpoint (safetensors file without EmoNet metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: corrupt EmoNet metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") not in (MODEL_FORMAT, TASK_FORMAT):
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path}: not an EmoNet checkpoint (unknown format {found!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by a newer EmoNet (format version {version!r} > {FORMAT_VERSION}); upgrade emonet"
        )
    if version < FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {version} holds an earlier emonet network shape (stages f/2f/4f); "
            f"this EmoNet reads version {FORMAT_VERSION}: build and train the model again"
        )
    return meta


def checkpoint_config(path: Path, meta: dict[str, Any]) -> ModelConfig:
    """The model config of checkpoint metadata; every architecture key must be present, except
    ``input_frames`` in a file written before it existed: its avgpool top was the global masked
    mean, which is ``meanpool`` now."""
    config = meta.get("config")
    if isinstance(config, dict) and "input_frames" not in config:
        old = config.get("classifier")
        config = {**config, "input_frames": None, "classifier": "meanpool" if old == "avgpool" else old}
    try:
        return ModelConfig.from_dict(config, complete=True)
    except ConfigError as exc:
        raise CheckpointError(f"{path}: invalid model config in the metadata ({exc})") from None


def _to_json(value: Any) -> Any:
    """JSON default hook: numpy arrays and tensors become lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of ``tensors`` (in name order)."""
    digest = hashlib.sha256()
    for key in sorted(tensors):
        tensor = tensors[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def write_checkpoint(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write tensors and metadata (with the tensors' checksum) to ``path`` atomically
    (temp file, fsync, rename)."""
    meta = {**meta, "tensors_sha256": tensors_sha256(tensors)}
    try:
        text = json.dumps(meta, default=_to_json, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: checkpoint metadata is not JSON-safe: {exc}") from None
    data = safetensors_save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata={_META_KEY: text})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def base_meta(kind: str, model: EmoNet, tasks: dict[str, list[str]]) -> dict[str, Any]:
    """The metadata keys common to model and task files."""
    return {
        "format": kind,
        "format_version": FORMAT_VERSION,
        "emonet_version": emonet.__version__,
        "config": model.config.to_dict(),
        "tasks": [{"name": name, "classes": list(classes)} for name, classes in tasks.items()],
    }


def load_tensors(path: Path, meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint, on the CPU, checked against the metadata's checksum
    (CheckpointError when unreadable or changed since written)."""
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable tensors ({exc})") from None
    if tensors_sha256(tensors) != meta.get("tensors_sha256"):
        raise CheckpointError(f"{path}: corrupt: the tensors do not match the checksum written with them")
    return tensors


# ---------------------------------------------------------------- full model
def save_checkpoint(
    path: str | os.PathLike,
    model: EmoNet,
    *,
    feature_config: dict | None = None,
    norm_stats: dict | None = None,
    extra: dict | None = None,
) -> Path:
    """Write the whole model to one ``.safetensors`` file, atomically.

    Args:
        path: the file to write (its folder is created; an existing file is replaced).
        model: the model; its tasks, config and ``training_record`` go into the metadata.
        feature_config: the log-mel feature config; default ``model.feature_config``.
        norm_stats: task -> {"mean", "std"}; default ``model.norm_stats``. Given ones are
            merged over the model's (a task keeps the statistics it came with).
        extra: free JSON-safe metadata (epoch, scores, ...).

    Returns:
        ``path`` as a Path.

    Raises:
        CheckpointError: metadata that is not JSON-safe (nothing is written).
    """
    path = Path(path)
    stats = {t: s for t, s in model.norm_stats.items() if t in model.tasks}
    stats.update({t: s for t, s in (norm_stats or {}).items()})
    meta = {
        **base_meta(MODEL_FORMAT, model, model.tasks),
        "feature_config": model.feature_config if feature_config is None else feature_config,
        "norm_stats": stats,
        "training": model.training_record,
        "extra": extra or {},
    }
    write_checkpoint(path, model.state_dict(), meta)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[EmoNet, dict[str, Any]]:
    """Rebuild a model from a file written by ``save_checkpoint``.

    Args:
        path: the ``.safetensors`` model file.
        map_location: the device to put the model on.

    Returns:
        ``(model, meta)``: the model in eval mode, with ``feature_config``, ``norm_stats`` and
        ``training_record`` set from the metadata, and the metadata dict.

    Raises:
        CheckpointError: not an EmoNet model file, a config key missing, weights that do not
            fit the config. FileNotFoundError when there is no file.
    """
    path = Path(path)
    meta = read_checkpoint_metadata(path)
    if meta["format"] == TASK_FORMAT:
        raise CheckpointError(
            f"{path}: a task pack (task {meta.get('task')!r}), not a model; attach it to its model with "
            f"'emonet task attach MODEL {path.name} -o OUT.safetensors' and use OUT.safetensors"
        )
    config = checkpoint_config(path, meta)
    try:
        tasks = {t["name"]: t["classes"] for t in meta["tasks"]}
        model = build_model(config, tasks)
    except (KeyError, TypeError, EmoNetError) as exc:
        raise CheckpointError(f"{path}: invalid EmoNet metadata ({exc})") from None
    state = load_tensors(path, meta)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(f"{path}: weights do not match the stored config ({' '.join(first[:2])})") from None
    model.feature_config = meta.get("feature_config")
    model.norm_stats = {t: s for t, s in (meta.get("norm_stats") or {}).items() if t in model.tasks}
    model.training_record = meta.get("training")
    return model.to(map_location).eval(), meta


def load_model(
    path: str | os.PathLike, device: str | torch.device = "cpu", option: str = "--model"
) -> tuple[EmoNet, dict[str, Any]]:
    """The model checkpoint a command's ``option`` names, loaded as :func:`load_checkpoint`
    does: every command that takes a model loads it here, with one set of messages.

    Args:
        path: the ``.safetensors`` model file.
        device: the device to put the model on.
        option: the command's option or argument naming the file (starts each message).

    Returns:
        ``(model, meta)``: the model in eval mode, and the checkpoint's metadata.

    Raises:
        CheckpointError: one line naming ``option`` and the file: no such file, a folder, a
            file that is not an EmoNet checkpoint (or a corrupt one), a task pack.
    """
    path = Path(path)
    fix = "pass a model checkpoint (.safetensors file)"
    if path.is_dir():
        raise CheckpointError(f"{option} {path}: is a folder, not a checkpoint file; {fix}")
    if not path.is_file():
        raise CheckpointError(f"{option} {path}: no such checkpoint file; {fix}")
    try:
        return load_checkpoint(path, map_location=device)
    except CheckpointError as exc:
        raise CheckpointError(f"{option} {str(exc).strip().splitlines()[0]}") from None
