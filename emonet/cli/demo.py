"""`emonet demo-data`: write the built-in synthetic demo corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emonet.cli.console import out
from emonet.errors import EmoNetError


def demo_data(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the demo corpus into.")],
    files_per_task: Annotated[int, typer.Option("--files-per-task", "-n", help="Wav files per task.")] = 120,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed writes the same files.")] = 0,
    tasks: Annotated[
        list[str] | None,
        typer.Option("--tasks", metavar="TASK...", help="Demo tasks to write (default: all)."),
    ] = None,
    min_seconds: Annotated[float, typer.Option(help="Shortest utterance.")] = 1.0,
    max_seconds: Annotated[float, typer.Option(help="Longest utterance.")] = 3.0,
) -> None:
    """Write the built-in synthetic demo corpus (16 kHz wavs + csvs in the original EmoNet's layout).

    Example: emonet demo-data demo/corpus
    """
    from emonet.data.demo import generate_demo_corpus  # lazy: keeps torch and zarr off 'emonet --help'

    try:
        info = generate_demo_corpus(
            out_dir,
            files_per_task=files_per_task,
            seed=seed,
            tasks=tasks,
            min_seconds=min_seconds,
            max_seconds=max_seconds,
        )
    except ValueError as exc:
        raise EmoNetError(str(exc)) from None
    for task, t in info["tasks"].items():
        out.print(
            f"{task}: classes {', '.join(t['classes'])}; train {t['train']}, devel {t['devel']}, test {t['test']} files"
        )
    out.print(
        f"data path: {out_dir / 'data'}\n"
        f"single-task csvs: {out_dir / 'tasks'}/<task>/\n"
        f"multi-task setup: {out_dir / 'multi-task-setup'}"
    )
