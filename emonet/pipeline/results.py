"""The results table of a pipeline: UAR per task (rows) and stage (columns), from the
``results.json`` of every train and evaluate stage, as a pandas DataFrame written as CSV,
markdown and a bar chart."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from emonet.pipeline.runner import StageResult
from emonet.pipeline.spec import Pipeline
from emonet.utils.fs import atomic_write_bytes


def _results_file(result: StageResult) -> Path | None:
    for key in ("run", "dir"):
        if key in result.outputs and (Path(result.outputs[key]) / "results.json").is_file():
            return Path(result.outputs[key]) / "results.json"
    return None


def collect_results(pipeline: Pipeline, results: list[StageResult], partition: str = "test") -> dict:
    """{stage label: {task: uar}} for every stage that wrote a results.json, on
    ``partition`` (or devel where a task has no scored test partition)."""
    table: dict[str, dict[str, float]] = {}
    for result in results:
        path = _results_file(result)
        if path is None:
            continue
        label = pipeline.stage(result.name).label
        for task, parts in json.loads(path.read_text()).items():
            metrics = parts.get(partition) or parts.get("devel") or {}
            if "uar" in metrics:
                table.setdefault(label, {})[task] = float(metrics["uar"])
    return table


def results_frame(table: dict) -> pd.DataFrame:
    """The table as a DataFrame: tasks (rows, sorted) x stages (columns, in pipeline order),
    UAR values, NaN where a stage did not score a task."""
    frame = pd.DataFrame({stage: pd.Series(row, dtype=float) for stage, row in table.items()})
    frame = frame.reindex(sorted(frame.index))
    frame.index.name = "task"
    return frame


def table_csv(table: dict) -> str:
    """CSV: a ``task`` column, then one column per stage (4 decimals; empty where not scored)."""
    return results_frame(table).to_csv(float_format="%.4f", lineterminator="\n")


def table_markdown(table: dict) -> str:
    """A markdown table (3 decimals; empty where not scored)."""
    frame = results_frame(table)
    lines = ["| task | " + " | ".join(frame.columns) + " |", "| --- |" + " ---: |" * len(frame.columns)]
    for task, row in frame.iterrows():
        cells = ("" if pd.isna(v) else f"{v:.3f}" for v in row)
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def bar_chart(table: dict, path: Path, title: str) -> Path:
    """Grouped bars: one group per task, one bar per stage."""
    import matplotlib  # only where a chart is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = results_frame(table)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(frame) * max(1, len(frame.columns)) / 2), 3.2))
    frame.plot.bar(ax=ax, rot=0, width=0.8)
    ax.set_xlabel("")
    ax.set_ylabel("UAR")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def write_results(pipeline: Pipeline, table: dict) -> dict[str, Path]:
    """results.csv, results.md and results.png in the workdir; returns their paths."""
    out = {"csv": pipeline.workdir / "results.csv", "markdown": pipeline.workdir / "results.md"}
    atomic_write_bytes(out["csv"], table_csv(table).encode())
    atomic_write_bytes(out["markdown"], table_markdown(table).encode())
    if table:
        out["chart"] = bar_chart(table, pipeline.workdir / "results.png", f"{pipeline.path.stem}: UAR per task")
    return out
