"""`emonet task export|attach`: share one corpus's part of a model as a task pack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emonet.cli.console import out
from emonet.errors import CheckpointError, ConfigError, ModelError, UnknownTaskError
from emonet.utils.output_paths import check_output_file, output_errors

app = typer.Typer(
    name="task",
    help="Task packs: one task's own parameters (adapters, BNs, attention, head) with its labels, statistics and "
    "feature config, to attach to any model with the same shared backbone.",
    no_args_is_help=True,
)


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.2f} MB"


def _existing(path: Path, what: str) -> None:
    """A checkpoint or pack to read: a missing file or a folder is one line naming it."""

    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; {what} must be a .safetensors file")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; check the {what} path")


def _check_pack_name(name: object, pack: Path) -> None:
    """A pack's task name becomes file names (plots, predictions): a name that is a path is refused."""
    from emonet.models.task_parts import validate_task_name  # lazy: keeps torch and zarr off 'emonet --help'

    try:
        validate_task_name(name)
    except ConfigError as exc:
        raise CheckpointError(f"{pack}: {exc}; this pack cannot be attached") from None


@app.command("export")
def export(
    model: Annotated[Path, typer.Argument(metavar="CKPT", help="Model checkpoint (.safetensors).")],
    task: Annotated[str, typer.Argument(metavar="TASK", help="The task to export.")],
    pack: Annotated[str, typer.Argument(metavar="PACK.safetensors", help="Task pack to write (never the model).")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing pack.")] = False,
) -> None:
    """Write one task's own parameters, label map, statistics, feature config and backbone fingerprint.

    Example: emonet task export runs/demo/best.safetensors acted acted.safetensors
    """
    from emonet.models import export_task, load_model  # lazy: keeps torch and zarr off 'emonet --help'

    net, _meta = load_model(model, option="CKPT")
    pack = check_output_file(pack, overwrite=overwrite, inputs=[model], option="PACK")
    if task not in net.tasks:
        raise UnknownTaskError(f"task {task!r} is not in {model}; it has: {', '.join(net.tasks)}")
    with output_errors(pack):
        export_task(net, task, pack)
    out.print(f"wrote {pack} ({_size(pack)}; the model is {_size(model)}): task {task!r}", highlight=False)


@app.command("attach")
def attach(
    model: Annotated[Path, typer.Argument(metavar="CKPT", help="Model checkpoint (.safetensors).")],
    packs: Annotated[list[Path], typer.Argument(metavar="PACK", help="Task packs to attach.")],
    output: Annotated[
        str, typer.Option("--output", "-o", metavar="FILE", help="The model to write (never one of the inputs).")
    ],
    replace: Annotated[bool, typer.Option("--replace", help="Replace tasks of the same name in the model.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")] = False,
) -> None:
    """Add task packs to a model with the same shared backbone and features, and save it.

    Example: emonet task attach base.safetensors acted.safetensors valence.safetensors -o both.safetensors
    """
    from emonet.models import (  # lazy: keeps torch and zarr off 'emonet --help'
        attach_task,
        load_model,
        read_checkpoint_metadata,
        save_checkpoint,
    )

    net, _meta = load_model(model, option="CKPT")
    for pack in packs:
        _existing(pack, "PACK")
    output = check_output_file(output, overwrite=overwrite, inputs=[model, *packs])
    names = []
    for pack in packs:
        name = read_checkpoint_metadata(pack).get("task")
        if name is not None:
            _check_pack_name(name, pack)
        if name in names:
            raise ModelError(f"{pack}: a second pack for task {name!r}; attach one per task")
        if name in net.tasks:
            if not replace:
                raise ModelError(f"{pack}: the model already has a task named {name!r}; pass --replace to replace it")
            net.remove_task(name)
        attach_task(net, pack)
        names.append(name)
    with output_errors(output):
        save_checkpoint(output, net)
    out.print(f"wrote {output} ({_size(output)}): tasks {', '.join(net.tasks)}; attached {', '.join(names)}")
