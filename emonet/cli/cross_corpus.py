"""`emonet cross-corpus`: the train corpus x test corpus UAR table of one or several models (a
thin layer over emonet.evaluation.cross_corpus)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from emonet.cli import run_options as ro
from emonet.cli.console import out
from emonet.cli.evaluate import DropUnmapped, LabelMap, Partition, ScoringBatch


def cross_corpus(
    ctx: typer.Context,
    models: Annotated[
        list[Path],
        typer.Option("--model", metavar="CKPT", help="Model checkpoint(s): one multi-task or several single-corpus."),
    ],
    stores: Annotated[
        list[Path],
        typer.Option("--store", "-s", metavar="STORE", help="Feature store(s) holding the tasks; repeat for several."),
    ],
    tasks: Annotated[
        list[str],
        typer.Option("--tasks", "-t", metavar="TASK...", help="The test corpora: tasks of the stores to score."),
    ],
    heads: Annotated[
        list[str] | None,
        typer.Option("--heads", metavar="HEAD...", help="The train corpora: the models' tasks (default: all)."),
    ] = None,
    label_map: LabelMap = None,
    drop_unmapped: DropUnmapped = False,
    partition: Partition = "test",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Folder for the files (default: cross-corpus-<partition> beside the model)."
        ),
    ] = None,
    batch_size: ScoringBatch = 64,
    device: ro.Device = "cpu",
    precision: ro.Precision = "fp32",
) -> None:
    """Score every head of the models on every task's partition (through --label-map): a table
    train corpus (head) x test corpus (task) of UAR, as cross_corpus.csv, .md and a heatmap PNG.

    Example: emonet cross-corpus --model runs/emodb/best.safetensors --model runs/cremad/best.safetensors
    -s stores/emobox -t emodb cremad --label-map map.json
    """
    print_cross_corpus(run_cross_corpus(ctx.params))


def run_cross_corpus(p: Mapping[str, Any]):
    """Run the matrix the parsed options ask for (``ctx.params``), for the command and its stage."""
    from emonet.evaluation import cross_corpus as run  # lazy: keeps torch and zarr off 'emonet --help'

    return run(
        list(p["models"]), list(p["stores"]), list(p["tasks"]), p["heads"], p["partition"], p["label_map"],
        p["drop_unmapped"], p["output"], p["batch_size"], p["device"], p["precision"],
    )  # fmt: skip


def print_cross_corpus(result) -> None:
    """The UAR table (rows: heads, columns: tasks) and where its files are."""
    table = Table(title=f"cross-corpus UAR ({result.partition}): train (head) x test (task)", title_justify="left")
    table.add_column("train \\ test")
    for t in result.tasks:
        table.add_column(t, justify="right")
    for h in result.heads:
        cells = (result.table[h].get(t) for t in result.tasks)
        table.add_row(h, *("-" if v is None else f"{v:.4f}" for v in cells))
    out.print(table)
    dropped = sum(e.dropped for e in result.evaluation.tasks.values())
    if dropped:
        out.print(f"--drop-unmapped left out {dropped} items (per pair: results.json 'dropped')", highlight=False)
    out.print(
        f"wrote {result.output} (cross_corpus.csv, cross_corpus.md, cross_corpus.png, results.json, predictions.csv)",
        highlight=False,
    )
