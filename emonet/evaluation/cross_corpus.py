"""The cross-corpus matrix (EmoBox's cross-corpus track): every head of one or several models
(the train corpus) scores every given task's partition (the test corpus) through one label map
(:mod:`.label_maps`), and the UARs become a table train corpus x test corpus, written as
``cross_corpus.csv``, ``cross_corpus.md`` and a heatmap ``cross_corpus.png``, beside the
evaluation files of every pair (``results.json``, ``predictions.csv``, confusion PNGs, keyed
``HEAD_on_TASK``). The diagonal (a head on its own task's partition) is plain ``evaluate``."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

from emonet.errors import ConfigError, UnknownTaskError
from emonet.evaluation.evaluator import Evaluation, evaluate
from emonet.evaluation.label_maps import parse_label_map
from emonet.evaluation.outputs import write_evaluation
from emonet.models.checkpoint import load_model
from emonet.utils.devices import resolve_device
from emonet.utils.fs import atomic_write_bytes

FILES = ("cross_corpus.csv", "cross_corpus.md", "cross_corpus.png")


@dataclass
class CrossCorpus:
    """What :func:`cross_corpus` did."""

    partition: str
    heads: list[str]  # rows: the train corpora (the models' tasks whose heads scored)
    tasks: list[str]  # columns: the test corpora (the scored tasks)
    table: dict[str, dict[str, float | None]]  # head -> task -> UAR (None: an unlabelled partition)
    evaluation: Evaluation  # every pair's scores, keyed HEAD_on_TASK
    output: Path | None = None


def _heads(models: list[str], loaded: dict[str, tuple], heads: list[str] | None) -> list[tuple[str, str]]:
    """(model, head) pairs: every task of each model, or the named ``heads``, each of one model
    (a model named twice has its heads in two models)."""
    owners: dict[str, list[str]] = {}
    for m in models:
        for t in loaded[m][0].tasks:
            owners.setdefault(t, []).append(m)
    for h in heads or []:
        if h not in owners:
            raise UnknownTaskError(f"--heads {h!r} is a task of none of the models; they have: {', '.join(owners)}")
    wanted = list(dict.fromkeys(heads)) if heads else list(owners)
    twice = [h for h in wanted if len(owners[h]) > 1]
    if twice:
        raise ConfigError(
            f"head {twice[0]!r} is in several models ({', '.join(owners[twice[0]])}); "
            "name the heads to score with --heads, each in one model"
        )
    return [(owners[h][0], h) for h in wanted]


def cross_corpus(
    models: list[str | Path],
    stores: list,
    tasks: list[str],
    heads: list[str] | None = None,
    partition: str = "test",
    label_map: str | Path | dict | None = None,
    drop_unmapped: bool = False,
    output: str | Path | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    precision: str = "fp32",
    write: bool = True,
) -> CrossCorpus:
    """Score every head of ``models`` (or ``heads``) on every task of ``tasks``.

    Args:
        models: checkpoints: one multi-task model, or several single-corpus ones.
        stores: the feature stores holding ``tasks``.
        tasks: the test corpora (tasks of the stores).
        heads: the train corpora (tasks of the models; default: all of them); one model each.
        label_map: the scored labels -> the heads' classes, for every pair (labels named as a
            head's class map to it; see :mod:`.label_maps`).
        drop_unmapped: leave out the items whose label maps to nothing instead of refusing.
        output: the folder for the table and the pairs' files (default:
            ``cross-corpus-<partition>`` beside the first model).
        partition, batch_size, device, precision, write: as :func:`~.evaluator.evaluate`.

    Raises:
        ConfigError, UnknownTaskError, ModelError, StoreError: one line, nothing written.
    """
    if not models:
        raise ConfigError("name at least one model (--model CKPT)")
    if not tasks:
        raise ConfigError("name the tasks to score (the test corpora) with --tasks TASK...")
    mapping = parse_label_map(label_map) if label_map is not None else None
    dev = resolve_device(device)
    loaded = {str(m): load_model(m, dev) for m in models}  # once each: its messages for a missing or bad file
    pairs = _heads([str(m) for m in models], loaded, heads)
    folder = Path(output) if output is not None else Path(models[0]).parent / f"cross-corpus-{partition}"
    if write and folder.exists() and not folder.is_dir():
        raise ConfigError(f"--output {folder}: is a file, not a folder; give a folder for the table's files")
    scored = {}
    for model, head in pairs:
        ev = evaluate(
            model, stores, tasks, partition, None, batch_size, dev, precision, False, head, mapping, drop_unmapped,
            loaded=loaded[model],
        )  # fmt: skip
        scored.update(ev.tasks)
    tasks = list(dict.fromkeys(tasks))
    table = {h: {e.task: (e.metrics or {}).get("uar") for e in scored.values() if e.head == h} for _, h in pairs}
    evaluation = Evaluation(", ".join(map(str, models)), partition, scored)
    result = CrossCorpus(partition, [h for _, h in pairs], tasks, table, evaluation)
    if write:
        result.output = write_cross_corpus(result, folder)
    return result


def _cell(value: float | None, digits: int) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def matrix_csv(result: CrossCorpus) -> str:
    """``head`` (the train corpus), then one column per test corpus: UAR, 4 decimals (empty: unlabelled)."""
    lines = [",".join(["head", *result.tasks])]
    lines += [",".join([h, *(_cell(result.table[h].get(t), 4) for t in result.tasks)]) for h in result.heads]
    return "\n".join(lines) + "\n"


def matrix_markdown(result: CrossCorpus) -> str:
    """A markdown table: train corpus (head) rows, test corpus columns, UAR with 3 decimals."""
    lines = [
        "| train \\ test | " + " | ".join(result.tasks) + " |",
        "| --- |" + " ---: |" * len(result.tasks),
    ]
    lines += [
        f"| {h} | " + " | ".join(_cell(result.table[h].get(t), 3) for t in result.tasks) + " |" for h in result.heads
    ]
    return "\n".join(lines) + "\n"


def matrix_png(result: CrossCorpus) -> bytes:
    """A heatmap of the UARs (0 to 1), each cell labelled; blank where not scored."""
    import matplotlib  # only where a chart is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cells = [[result.table[h].get(t) for t in result.tasks] for h in result.heads]
    grid = np.array([[np.nan if v is None else v for v in row] for row in cells], float)
    fig, ax = plt.subplots(figsize=(2.2 + 0.8 * len(result.tasks), 1.6 + 0.5 * len(result.heads)))
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0.0, vmax=1.0)
    for i in range(len(result.heads)):
        for j in range(len(result.tasks)):
            if math.isfinite(grid[i, j]):
                colour = "black" if grid[i, j] > 0.6 else "white"
                ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(len(result.tasks)), result.tasks, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(result.heads)), result.heads, fontsize=8)
    ax.set_xlabel("test corpus (scored task)")
    ax.set_ylabel("train corpus (head)")
    ax.set_title(f"cross-corpus UAR ({result.partition})", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def write_cross_corpus(result: CrossCorpus, folder: str | Path) -> Path:
    """The pairs' evaluation files, then the table's (:data:`FILES`), into ``folder``."""
    folder = write_evaluation(result.evaluation, folder)
    files = {FILES[0]: matrix_csv(result).encode(), FILES[1]: matrix_markdown(result).encode()}
    files[FILES[2]] = matrix_png(result)
    for name, data in files.items():
        atomic_write_bytes(folder / name, data)
    return folder
