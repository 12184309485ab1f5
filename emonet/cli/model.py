"""`emonet init-model`: build an untrained model for a store's tasks and save it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emonet.cli import model_options as mo
from emonet.cli.console import out
from emonet.cli.model_summary import render_model_summary
from emonet.errors import EmoNetError


def init_model(
    ctx: typer.Context,
    out_path: Annotated[Path, typer.Argument(help="Checkpoint file to write (.safetensors).")],
    store: Annotated[
        Path,
        typer.Option("--store", "-s", help="Feature store whose tasks, label maps and feature config the model takes."),
    ],
    tasks: Annotated[
        list[str] | None,
        typer.Option(
            "--tasks",
            "-t",
            metavar="TASK...",
            help="Tasks of the store to include (default: all), space-separated.",
        ),
    ] = None,
    mode: mo.Mode = "adapters",
    initial_model: mo.InitialModel = None,
    model: mo.ModelType = "cnn",
    blocks: mo.Blocks = 2,
    filters: mo.Filters = 32,
    widen: mo.Widen = 1,
    dropout: mo.Dropout = "0,0.5",
    classifier: mo.Classifier = "attention",
    window: mo.InputWindow = None,
    share_feature_layer: mo.ShareFeatureLayer = False,
    adapter_type: mo.AdapterType = "parallel",
    band_norm: mo.BandNorm = False,
    identity_adapters: mo.IdentityAdapters = False,
    copy_task_parts: mo.CopyTaskParts = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
) -> None:
    """Build an (untrained) model for a store's tasks in a training mode and save it.

    Example: emonet init-model model.safetensors --store features/ --mode adapters
    """
    from emonet.models import describe_model, save_checkpoint  # lazy: keeps torch and zarr off 'emonet --help'
    from emonet.models.from_store import model_for_store  # lazy: keeps torch and zarr off 'emonet --help'
    from emonet.store import open_store  # lazy: keeps torch and zarr off 'emonet --help'

    if out_path.exists() and not overwrite:
        raise EmoNetError(f"{out_path}: exists; choose another path or pass --overwrite")
    cfg = mo.model_config(model, blocks, filters, widen, dropout, classifier, share_feature_layer, adapter_type)
    opened = open_store(store)
    cfg = mo.with_window(cfg, opened.feature_config, window)
    given = mo.given_fields(ctx) | ({"input_frames"} if window is not None else set())
    built = model_for_store(
        opened, tasks, mode, cfg, initial_model, given=given, band_norm=band_norm,
        identity_adapters=identity_adapters, copy_task_parts=copy_task_parts,
    )  # fmt: skip
    net = built.model
    save_checkpoint(out_path, net, extra=built.extra)
    out.print(render_model_summary(describe_model(net)))
    for note in built.notes:
        out.print(f"note: {note}")
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    out.print(f"wrote {out_path} (mode {mode}; trainable: {trainable:,} parameters)")
