"""Rich tables of a model's or task file's summary (``describe_model`` / ``describe_checkpoint``)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table


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
    for column in ("part", "classes", "params", "adapters", "BN/norm", "attn", "head", "overhead", "adapt/layers"):
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
            _n(t["bn"] + t["norm"]),
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
