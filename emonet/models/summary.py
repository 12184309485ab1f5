"""Architecture summary: shared vs per-task parameters and the per-task overhead."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table
from safetensors import safe_open

from emonet.models.checkpoint import TASK_FORMAT, load_checkpoint, read_checkpoint_metadata
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


def describe_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """``describe_model`` of a saved model plus its metadata; for a task file, its metadata
    and parameter count."""
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
    model, _ = load_checkpoint(path)
    return {**describe_model(model), **file_info}


def _numel(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def render_model_summary(info: dict[str, Any]) -> Table:
    """A rich table of ``describe_model`` / ``describe_checkpoint`` output."""
    cfg = info["config"]
    if "task" in info:  # a task file
        table = Table(title=f"EmoNet task file: {info['task']}")
        table.add_column("field")
        table.add_column("value")
        table.add_row("classes", ", ".join(info["classes"]))
        table.add_row("parameters", f"{info['task_parameters']:,}")
        table.add_row("architecture", _config_line(cfg))
        table.add_row("backbone weights", info["backbone"]["weights"][:16])
        return table
    table = Table(
        title=f"EmoNet {info['model']}: {info['total']:,} parameters",
        box=box.SIMPLE_HEAD,
        padding=(0, 0, 0, 1),
        pad_edge=False,
        caption=_config_line(cfg) + "\noverhead = task parameters / shared parameters; "
        "adapt/layers = adapter parameters / shared conv+rnn weights",
    )
    table.caption_justify = "left"
    for column in ("part", "classes", "params", "adapters", "BN", "attn", "head", "overhead", "adapt/layers"):
        table.add_column(
            column, justify="left" if column == "part" else "right", no_wrap=column != "part", overflow="fold"
        )
    shared = info["shared"]
    table.add_row("shared", "-", _n(shared["total"]), "-", "-", _n(shared["attention"]), "-", "-", "-", style="bold")
    for name, t in info["tasks"].items():
        table.add_row(
            name,
            str(len(t["classes"])),
            _n(t["total"]),
            _n(t["adapters"]),
            _n(t["bn"]),
            _n(t["attention"]),
            _n(t["head"]),
            f"{t['overhead_pct']:.1f}%",
            f"{t['adapter_pct_of_layers']:.1f}%",
        )
    return table


def _n(count: int) -> str:
    """Compact parameter count: 950, 103.2k, 5.23M."""
    if count < 1000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1e3:.1f}k"
    return f"{count / 1e6:.2f}M"


def _config_line(cfg: dict[str, Any]) -> str:
    parts = [f"model={cfg['model']}"]
    if cfg["model"] in ("cnn", "fusion"):
        parts += [f"N={cfg['n_blocks']}", f"filters={cfg['n_filters']}", f"widen={cfg['widen_factor']}"]
    if cfg["model"] in ("rnn", "fusion"):
        parts += [f"rnn={cfg['rnn_layers']}x{cfg['rnn_hidden']}"]
    parts += [
        f"adapters={cfg['adapter_type']}",
        f"classifier={cfg['classifier']}",
        f"shared attention={'yes' if cfg['share_feature_layer'] else 'no'}",
        f"mels={cfg['n_mels']}",
    ]
    return ", ".join(parts)
