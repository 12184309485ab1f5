"""`emonet task export|attach`: share one corpus's part of a model as a task pack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emonet.cli.console import out

app = typer.Typer(
    name="task",
    help="Task packs: one task's own parameters (adapters, BNs, attention, head) with its labels, statistics and "
    "feature config, to attach to any model with the same shared backbone.",
    no_args_is_help=True,
)


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.2f} MB"


@app.command("export")
def export(
    model: Annotated[Path, typer.Argument(metavar="CKPT", help="Model checkpoint (.safetensors).")],
    task: Annotated[str, typer.Argument(metavar="TASK", help="The task to export.")],
    pack: Annotated[Path, typer.Argument(metavar="PACK.safetensors", help="Task pack to write.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing pack.")] = False,
) -> None:
    """Write one task's own parameters, label map, statistics, feature config and backbone fingerprint.

    Example: emonet task export runs/demo/best.safetensors acted acted.safetensors
    """
    from emonet.errors import EmoNetError, UnknownTaskError
    from emonet.models import export_task, load_checkpoint

    if pack.exists() and not overwrite:
        raise EmoNetError(f"{pack}: exists; choose another path or pass --overwrite")
    net, _meta = load_checkpoint(model)
    if task not in net.tasks:
        raise UnknownTaskError(f"task {task!r} is not in {model}; it has: {', '.join(net.tasks)}")
    export_task(net, task, pack)
    out.print(f"wrote {pack} ({_size(pack)}; the model is {_size(model)}): task {task!r}", highlight=False)


@app.command("attach")
def attach(
    model: Annotated[Path, typer.Argument(metavar="CKPT", help="Model checkpoint (.safetensors).")],
    packs: Annotated[list[Path], typer.Argument(metavar="PACK", help="Task packs to attach.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The model to write (.safetensors).")],
    replace: Annotated[bool, typer.Option("--replace", help="Replace tasks of the same name in the model.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")] = False,
) -> None:
    """Add task packs to a model with the same shared backbone and features, and save it.

    Example: emonet task attach base.safetensors acted.safetensors valence.safetensors -o both.safetensors
    """
    from emonet.errors import EmoNetError, ModelError
    from emonet.models import attach_task, load_checkpoint, read_checkpoint_metadata, save_checkpoint

    if output.exists() and not overwrite:
        raise EmoNetError(f"{output}: exists; choose another path or pass --overwrite")
    net, _meta = load_checkpoint(model)
    names = []
    for pack in packs:
        name = read_checkpoint_metadata(pack).get("task")
        if name in names:
            raise ModelError(f"{pack}: a second pack for task {name!r}; attach one per task")
        if name in net.tasks:
            if not replace:
                raise ModelError(f"{pack}: the model already has a task named {name!r}; pass --replace to replace it")
            net.remove_task(name)
        attach_task(net, pack)
        names.append(name)
    save_checkpoint(output, net)
    out.print(f"wrote {output} ({_size(output)}): tasks {', '.join(net.tasks)}; attached {', '.join(names)}")
