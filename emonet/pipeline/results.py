"""The results table of a pipeline: UAR per task (rows) and stage (columns), from the
``results.json`` of every train and evaluate stage, written as CSV, markdown and a bar chart."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

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


def _rows(table: dict) -> tuple[list[str], list[str]]:
    stages = list(table)
    tasks = sorted({t for row in table.values() for t in row})
    return stages, tasks


def table_csv(table: dict) -> str:
    stages, tasks = _rows(table)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["task", *stages])
    for t in tasks:
        w.writerow([t, *(f"{table[s][t]:.4f}" if t in table[s] else "" for s in stages)])
    return buf.getvalue()


def table_markdown(table: dict) -> str:
    stages, tasks = _rows(table)
    lines = ["| task | " + " | ".join(stages) + " |", "| --- |" + " ---: |" * len(stages)]
    for t in tasks:
        lines.append(f"| {t} | " + " | ".join(f"{table[s][t]:.3f}" if t in table[s] else "" for s in stages) + " |")
    return "\n".join(lines) + "\n"


def bar_chart(table: dict, path: Path, title: str) -> Path:
    """Grouped bars: one group per task, one bar per stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages, tasks = _rows(table)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(tasks) * max(1, len(stages)) / 2), 3.2))
    width = 0.8 / max(1, len(stages))
    for i, s in enumerate(stages):
        xs = [k + i * width for k, t in enumerate(tasks) if t in table[s]]
        ax.bar(xs, [table[s][t] for t in tasks if t in table[s]], width, label=s)
    ax.set_xticks([k + width * (len(stages) - 1) / 2 for k in range(len(tasks))], tasks)
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
