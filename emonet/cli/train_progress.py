"""How `emonet train` shows a run: a rich progress bar with loss and devel UAR on a terminal,
one plain line per epoch otherwise, and a results table at the end."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from emonet.training.progress import EpochSummary
from emonet.training.progress import Progress as TrainProgress

# what an epoch's end does next, as its line says it
ACTIONS = {
    "next-stage": "  -> next stage (best weights, lr/10)",
    "lower-lr": "  -> next stage (lr/10)",
    "done": "  -> done",
}


class RichTrainProgress(TrainProgress):
    """Progress of a run on ``console`` (stderr): a bar per epoch when it is a terminal."""

    def __init__(self, console: Console, enabled: bool = True):
        self.console, self.enabled = console, enabled
        self.live = enabled and console.is_terminal
        self.bar: Progress | None = None
        self.task_id = None
        self.last_uar = "-"

    def begin(self, run_dir, steps_per_epoch: int, start_epoch: int) -> None:
        self.spe = steps_per_epoch
        if self.enabled:
            self.console.print(f"run folder: {run_dir}  ({steps_per_epoch} steps per epoch)", highlight=False)
        if self.live:
            self.bar = Progress(
                TextColumn("epoch {task.fields[epoch]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}  devel UAR {task.fields[uar]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.start()
            self.task_id = self.bar.add_task("train", total=steps_per_epoch, epoch=start_epoch + 1, loss="-", uar="-")

    def step(self, epoch: int, step: int, loss: float | None) -> None:
        if self.bar is not None:
            shown = f"{loss:.4f}" if loss is not None else "-"
            self.bar.update(self.task_id, completed=step, epoch=epoch, loss=shown, uar=self.last_uar)

    def epoch(self, s: EpochSummary) -> None:
        self.last_uar = f"{s.score:.3f}"
        if not self.enabled:
            return
        per_task = "  ".join(
            f"{t}: loss {s.train_loss[t]:.4f} UAR {d['uar']:.3f} F1 {d['macro_f1']:.3f}" for t, d in s.devel.items()
        )
        mark = " *best*" if s.is_best else ""
        stage = ACTIONS.get(s.action, "")
        self.console.print(
            f"epoch {s.epoch} stage {s.stage + 1} lr {s.lr:g}  {per_task}  mean UAR {s.score:.3f}{mark}{stage} "
            f"({s.seconds:.1f} s)",
            highlight=False,
            soft_wrap=True,
        )
        if self.bar is not None:
            self.bar.reset(self.task_id, total=self.spe, epoch=s.epoch + 1, loss="-", uar=self.last_uar)

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    def end(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def results_table(results: dict, run_dir, scored: str) -> Table:
    """task x partition: UAR, accuracy, macro F1, items; the title says which weights were
    ``scored`` (a single task's best devel weights; a multi-task run's final weights)."""
    table = Table(title=f"results of {scored} ({run_dir})")
    for col in ("task", "partition", "UAR", "accuracy", "macro F1", "items"):
        table.add_column(col, justify="left" if col in ("task", "partition") else "right")
    for task, parts in results.items():
        for part, m in parts.items():
            table.add_row(task, part, f"{m['uar']:.4f}", f"{m['accuracy']:.4f}", f"{m['macro_f1']:.4f}", str(m["n"]))
    return table
