"""The run's reports: TensorBoard scalars each epoch; results.json and PNG plots at the end."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

from emonet.evaluation.outputs import confusion_png, confusion_title
from emonet.training.run_dir import RESULTS
from emonet.utils.fs import atomic_write_bytes

_writers: dict[str, object] = {}


def _writer(run: Path):
    key = str(run)
    if key not in _writers:
        from torch.utils.tensorboard import SummaryWriter

        _writers[key] = SummaryWriter(log_dir=str(run / "tensorboard"))
    return _writers[key]


def log_scalars(run: Path, rows: list[dict]) -> None:
    """One epoch's rows of metrics.csv as TensorBoard scalars (``<task>/<metric>``)."""
    w = _writer(run)
    for row in rows:
        for key in ("loss", "devel_loss", "devel_uar", "devel_accuracy", "devel_macro_f1", "lr"):
            w.add_scalar(f"{row['task']}/{key}", float(row[key]), int(row["epoch"]))
    w.flush()


def close(run: Path) -> None:
    """Close the run's TensorBoard writer."""
    w = _writers.pop(str(run), None)
    if w is not None:
        w.close()


def finite_json(obj):
    """``obj`` with every NaN or infinite float replaced by None: results.json is strict
    JSON (null for an undefined metric), never a bare NaN."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def results_bytes(results: dict) -> bytes:
    """results.json's bytes: strict JSON, key-sorted."""
    return (json.dumps(finite_json(results), indent=1, sort_keys=True, allow_nan=False) + "\n").encode()


def write_reports(run: Path, results: dict, history: list[dict], best_epoch: int) -> None:
    """plots/learning_curves.png (``best_epoch``, the epoch whose weights were scored, marked),
    plots/confusion_<task>.png and, last (it marks the run as finished), results.json (task ->
    partition -> metrics)."""
    plots = run / "plots"
    plots.mkdir(exist_ok=True)
    if history:
        learning_curves(history, best_epoch, plots / "learning_curves.png")
    for task, parts in results.items():
        part = "test" if "test" in parts else "devel"
        m = parts[part]
        png = confusion_png(m["confusion_matrix"], list(m["per_class"]), confusion_title(task, part, m["uar"]))
        atomic_write_bytes(plots / f"confusion_{task}.png", png)
    close(run)
    atomic_write_bytes(run / RESULTS, results_bytes(results))


def _save(fig, path: Path) -> None:
    """A figure as PNG, written atomically like every file of the run."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def learning_curves(history: list[dict], best_epoch: int, path: Path) -> None:
    """Train loss and devel UAR per epoch, one line per task; the scored epoch (``best_epoch``) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_uar) = plt.subplots(1, 2, figsize=(10, 4))
    for task in dict.fromkeys(r["task"] for r in history):
        rows = [r for r in history if r["task"] == task]
        epochs = [r["epoch"] for r in rows]
        ax_loss.plot(epochs, [r["loss"] for r in rows], label=f"{task} train")
        ax_loss.plot(epochs, [r["devel_loss"] for r in rows], "--", label=f"{task} devel")
        ax_uar.plot(epochs, [r["devel_uar"] for r in rows], label=task)
    for ax, title in ((ax_loss, "loss"), (ax_uar, "devel UAR")):
        if best_epoch > 0:
            ax.axvline(best_epoch, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)
