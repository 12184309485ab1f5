"""`emonet run`: run a YAML pipeline, re-running only the stages whose inputs changed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from emonet.cli.console import err, out
from emonet.pipeline import load_pipeline, run_pipeline
from emonet.utils.fs import filesystem_errors


def _table(table: dict) -> Table:
    stages = list(table)
    tasks = sorted({t for row in table.values() for t in row})
    view = Table(title="UAR per task and stage (test partition)")
    view.add_column("task")
    for s in stages:
        view.add_column(s, justify="right")
    for t in tasks:
        view.add_row(t, *(f"{table[s][t]:.3f}" if t in table[s] else "" for s in stages))
    return view


def _cv_table(frame) -> Table:
    from emonet.pipeline.cv_results import folds_cell  # lazy: pandas only after a run

    view = Table(title="Cross-validation: mean ± std over folds (%, test partition)")
    for name in ("stage", "corpus", "folds", "UA", "WA", "macro F1"):
        view.add_column(name, justify="left" if name in ("stage", "corpus") else "right")
    for (stage, corpus), row in frame.iterrows():
        cells = [f"{100 * row[f'{m}_mean']:.2f} ± {100 * row[f'{m}_std']:.2f}" for m in ("ua", "wa", "macro_f1")]
        view.add_row(stage, corpus, folds_cell(row["folds"]), *(c.replace(" ± nan", "") for c in cells))
    return view


def run(
    ctx: typer.Context,
    pipeline_file: Annotated[Path, typer.Argument(metavar="PIPELINE.yaml", help="The pipeline to run.")],
    workdir: Annotated[
        Path | None, typer.Option("--workdir", help="Folder for the outputs (default: the file's 'workdir').")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Run every stage, also those up to date.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the file and say what would run.")] = False,
) -> None:
    """Run a pipeline of emonet stages (extract, train, evaluate, ...) from a YAML file.

    Stage options are the commands' own long option names. A stage is skipped when nothing it uses changed.

    Example: emonet run pipelines/demo.yaml
    """
    from emonet.cli.stages import register_stage_commands  # here, not on top: `emonet --help` stays quick

    register_stage_commands(ctx.find_root().command)  # the stages are the commands of this very CLI
    pipeline = load_pipeline(pipeline_file, workdir)
    results = run_pipeline(pipeline, force=force, dry_run=dry_run, echo=lambda line: err.print(line, highlight=False))
    if dry_run:
        return

    from emonet.pipeline.cv_results import collect_folds, cv_frame, write_cv_results  # lazy: pandas
    from emonet.pipeline.results import collect_results, write_results  # lazy: pandas only after a run

    table, folds = collect_results(pipeline, results), collect_folds(pipeline, results)
    kept = "the stages' outputs are kept; free space or fix the permissions and re-run"
    with filesystem_errors(pipeline.workdir, kept):
        files = {**write_results(pipeline, table), **write_cv_results(pipeline, folds)}
    if table:
        out.print(_table(table))
    if folds:
        out.print(_cv_table(cv_frame(folds)))
    out.print(f"results: {', '.join(str(p) for p in files.values())}", highlight=False)
    for r in results:
        if "store" in r.outputs:
            out.print(f"{r.name}: feature store {r.outputs['store']}", highlight=False)
        elif "run" in r.outputs:
            out.print(f"{r.name}: checkpoints, metrics and plots in {r.outputs['run']}", highlight=False)
        elif "dir" in r.outputs and (Path(r.outputs["dir"]) / "results.json").is_file():
            out.print(f"{r.name}: metrics, predictions and confusion matrices in {r.outputs['dir']}", highlight=False)
