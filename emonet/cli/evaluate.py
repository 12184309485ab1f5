"""`emonet evaluate`: score a checkpoint on a partition of feature stores (a thin layer over
emonet.evaluation.evaluate)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from emonet.cli import run_options as ro
from emonet.cli.console import out

# Cross-corpus options, shared with `emonet cross-corpus` (in evaluate they need --head).
Partition = Annotated[str, typer.Option("--partition", help="train | devel | test.")]
ScoringBatch = Annotated[
    int, typer.Option("--batch-size", "-bs", min=1, help="Utterances per forward pass (results do not change).")
]
LabelMap = Annotated[
    str | None,
    typer.Option(
        "--label-map",
        metavar="MAP",
        help="Cross-corpus: the scored labels -> the head's classes, LABEL=CLASS[,LABEL=CLASS...] or a "
        ".json/.csv file (equal names map to themselves); evaluate: with --head.",
    ),
]
DropUnmapped = Annotated[
    bool,
    typer.Option("--drop-unmapped", help="Cross-corpus: leave out items whose label maps to no class."),
]


def summary_table(evaluation) -> Table:
    """task x partition: UAR, accuracy, macro F1, items (unlabelled: predictions only); a
    cross-corpus row is HEAD_on_TASK, its items say how many --drop-unmapped left out."""
    table = Table(title=f"{evaluation.checkpoint} on {evaluation.partition}", title_justify="left")
    for col in ("task", "partition", "UAR", "accuracy", "macro F1", "items", "store"):
        table.add_column(col, justify="left" if col in ("task", "partition", "store") else "right")
    for t, e in evaluation.tasks.items():
        m = e.metrics
        scores = [f"{m['uar']:.4f}", f"{m['accuracy']:.4f}", f"{m['macro_f1']:.4f}"] if m else ["-", "-", "-"]
        items = str(len(e.files)) + (f" ({e.dropped} dropped)" if e.dropped else "")
        table.add_row(t, e.partition + ("" if m else " (unlabelled)"), *scores, items, e.store)
    return table


def class_table(evaluation) -> Table:
    """task x class: items, recall, precision (labelled tasks only)."""
    table = Table(title="per class", title_justify="left")
    for col in ("task", "class", "items", "recall", "precision"):
        table.add_column(col, justify="left" if col in ("task", "class") else "right")
    for t, e in evaluation.tasks.items():
        for c, v in (e.metrics or {}).get("per_class", {}).items():
            table.add_row(t, c, str(v["support"]), f"{v['recall']:.4f}", f"{v['precision']:.4f}")
    return table


def evaluate(
    ctx: typer.Context,
    model: Annotated[Path, typer.Option("--model", help="Model checkpoint (.safetensors).")],
    stores: Annotated[
        list[Path],
        typer.Option("--store", "-s", metavar="STORE", help="Feature store(s) holding the tasks; repeat for several."),
    ],
    tasks: Annotated[
        list[str] | None,
        typer.Option("--tasks", "-t", metavar="TASK...", help="Tasks to score (default: the model's in the stores)."),
    ] = None,
    partition: Partition = "test",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Folder for the files (default: evaluate-<partition> beside the model)."),
    ] = None,
    batch_size: ScoringBatch = 64,
    device: ro.Device = "cpu",
    precision: ro.Precision = "fp32",
    head: Annotated[
        str | None,
        typer.Option("--head", help="Cross-corpus: score --tasks (other corpora) with this task's head."),
    ] = None,
    label_map: LabelMap = None,
    drop_unmapped: DropUnmapped = False,
) -> None:
    """Score a model on a partition of feature stores: UAR, accuracy, macro F1, per-class recall
    and precision, confusion matrices; writes results.json, predictions.csv and PNGs.

    Example: emonet evaluate --model runs/demo/best.safetensors --store stores/demo --partition test

    Cross-corpus: emonet evaluate --model M --store S --head emodb --tasks cremad --label-map ANG=angry,HAP=happy
    """
    print_evaluation(evaluation(ctx.params))


def evaluation(p: Mapping[str, Any]):
    """Run the evaluation that parsed ``emonet evaluate`` options ask for (by parameter name:
    ``ctx.params``), shared by the command and the pipeline's evaluate stages (emonet.cli.stages)."""
    from emonet.evaluation import evaluate as run_evaluation  # lazy: keeps torch and zarr off 'emonet --help'

    return run_evaluation(
        p["model"], list(p["stores"]), p["tasks"], p["partition"], p["output"], p["batch_size"], p["device"],
        p["precision"], head=p.get("head"), label_map=p.get("label_map"), drop_unmapped=p.get("drop_unmapped", False),
    )  # fmt: skip


def print_evaluation(result) -> None:
    """The tables of an evaluation and where its files are (the command's and an evaluate stage's output)."""

    out.print(summary_table(result))
    if any(e.metrics for e in result.tasks.values()):
        out.print(class_table(result))
    out.print(f"wrote {result.output} (results.json, predictions.csv, confusion_<task>.png)", highlight=False)
