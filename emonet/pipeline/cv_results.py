"""The cross-validation table of a pipeline, shaped like EmoBox's intra-corpus leaderboard:
for every foreach stage whose expansions wrote a results.json (train, evaluate), one row per
corpus (a task name without its fold suffix: the stage's ``group`` regex removed from it), with
UA (= UAR), WA (accuracy) and macro F1 as mean and standard deviation over the folds and the
number of folds, then, for a stage with several corpora, their mean (corpus ``mean``); and one
row per fold with its run folder, from which the table is computed.

    cv_results.csv    stage, corpus, folds, ua_mean, ua_std, wa_mean, wa_std, macro_f1_mean, macro_f1_std
    cv_results.md     the same in percent (mean ± std), then every fold's run folder
    cv_folds.csv      stage, corpus, task, fold, partition, ua, wa, macro_f1, folder

The standard deviation is the sample one (n - 1, pandas' default), empty for a single fold."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from emonet.pipeline.runner import StageResult
from emonet.pipeline.spec import Pipeline
from emonet.utils.fs import atomic_write_bytes

METRICS = {"ua": "uar", "wa": "accuracy", "macro_f1": "macro_f1"}  # column -> key in results.json
MEAN = "mean"  # the corpus column of a stage's mean over its corpora
FOLD_COLUMNS = ["stage", "corpus", "task", "fold", "partition", *METRICS, "folder"]


def _results_folder(result: StageResult) -> Path | None:
    for key in ("run", "dir"):
        if key in result.outputs and (Path(result.outputs[key]) / "results.json").is_file():
            return Path(result.outputs[key])
    return None


def corpus_of(task: str, group: str) -> str:
    """The corpus a task is a fold of: ``group`` removed from its name (the name itself where
    that leaves nothing)."""
    return re.sub(group, "", task, count=1) or task


def collect_folds(pipeline: Pipeline, results: list[StageResult], partition: str = "test") -> list[dict]:
    """One row per (expansion of a foreach stage, task) that was scored on ``partition`` (or
    devel where a task has no scored test partition, as in the results table)."""
    rows = []
    for result in results:
        stage = pipeline.stage(result.name)
        folder = _results_folder(result)
        if not stage.base or folder is None:
            continue
        for task, parts in sorted(json.loads((folder / "results.json").read_text()).items()):
            part = partition if parts.get(partition) else "devel"
            metrics = parts.get(part) or {}
            if all(key in metrics for key in METRICS.values()):
                row = {"stage": stage.base, "corpus": corpus_of(task, stage.group), "task": task}
                row |= {"fold": stage.item, "partition": part, "folder": str(folder)}
                rows.append(row | {col: float(metrics[key]) for col, key in METRICS.items()})
    return rows


def folds_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=FOLD_COLUMNS)


def cv_frame(rows: list[dict]) -> pd.DataFrame:
    """(stage, corpus) rows in pipeline order: the number of folds, then the mean and
    standard deviation of each metric; after the corpora of a stage that scored two or more,
    a row (stage, ``mean``): the mean of their means (each corpus counts once, as EmoBox
    averages over datasets), no folds or std."""
    folds = folds_frame(rows)
    grouped = folds.groupby(["stage", "corpus"], sort=False)[list(METRICS)]
    frame = grouped.agg(["mean", "std"])
    frame.columns = [f"{metric}_{stat}" for metric, stat in frame.columns]
    frame.insert(0, "folds", grouped.size())
    index, records = [], []
    stages = list(frame.index.get_level_values("stage").unique())
    for stage in stages:
        part = frame.loc[[stage]]
        index += list(part.index)
        records += [row.to_dict() for _, row in part.iterrows()]
        if len(part) > 1:
            index.append((stage, MEAN))
            records.append({c: part[c].mean() if c.endswith("_mean") else float("nan") for c in frame.columns})
    out = pd.DataFrame(records, index=pd.MultiIndex.from_tuples(index, names=frame.index.names), columns=frame.columns)
    out["folds"] = out["folds"].astype("Int64")
    return out


def folds_cell(value) -> str:
    """The folds column as text: empty for a mean row."""
    return "" if pd.isna(value) else str(int(value))


def cv_csv(rows: list[dict]) -> str:
    return cv_frame(rows).to_csv(float_format="%.4f", lineterminator="\n")


def _cell(mean: float, std: float) -> str:
    return f"{100 * mean:.2f}" + ("" if pd.isna(std) else f" ± {100 * std:.2f}")


def cv_markdown(rows: list[dict]) -> str:
    """The table in percent (mean ± std over folds), then each fold's run folder."""
    frame = cv_frame(rows)
    lines = ["| stage | corpus | folds | UA (%) | WA (%) | macro F1 (%) |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for (stage, corpus), row in frame.iterrows():
        cells = [_cell(row[f"{m}_mean"], row[f"{m}_std"]) for m in METRICS]
        lines.append(f"| {stage} | {corpus} | {folds_cell(row['folds'])} | " + " | ".join(cells) + " |")
    lines += ["", "Folds (UA, WA, macro F1 on the partition named; each run folder is kept):", ""]
    for fold in folds_frame(rows).itertuples():
        lines.append(
            f"- {fold.stage}[{fold.fold}] {fold.task} ({fold.partition}): "
            f"{fold.ua:.4f}, {fold.wa:.4f}, {fold.macro_f1:.4f} in {fold.folder}"
        )
    return "\n".join(lines) + "\n"


def write_cv_results(pipeline: Pipeline, rows: list[dict]) -> dict[str, Path]:
    """cv_results.csv, cv_results.md and cv_folds.csv in the workdir (nothing without folds)."""
    if not rows:
        return {}
    out = {
        "cv csv": pipeline.workdir / "cv_results.csv",
        "cv markdown": pipeline.workdir / "cv_results.md",
        "cv folds": pipeline.workdir / "cv_folds.csv",
    }
    atomic_write_bytes(out["cv csv"], cv_csv(rows).encode())
    atomic_write_bytes(out["cv markdown"], cv_markdown(rows).encode())
    csv = folds_frame(rows).to_csv(index=False, float_format="%.6f", lineterminator="\n")
    atomic_write_bytes(out["cv folds"], csv.encode())
    return out
