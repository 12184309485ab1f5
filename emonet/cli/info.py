"""`emonet info`: summarise a feature store or a model checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emonet.cli.console import out
from emonet.cli.model_summary import render_model_summary
from emonet.cli.render import store_summary, store_table


def info(
    path: Annotated[Path, typer.Argument(help="A feature store folder or a model checkpoint file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Summarise a feature store (tasks, partitions, classes, sizes) or a model.

    Example: emonet info features/
    """
    import json

    if path.is_file():
        from emonet.models import describe_checkpoint  # lazy: keeps torch and zarr off 'emonet --help'

        desc = {**describe_checkpoint(path), "bytes_on_disk": path.stat().st_size}
        if as_json:
            out.print_json(json.dumps(desc))
        else:
            out.print(render_model_summary(desc))
            out.print(f"{path}: {desc['bytes_on_disk'] / 1e6:.2f} MB on disk", highlight=False)
        return
    data = store_summary(path)
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        out.print(store_table(data))
