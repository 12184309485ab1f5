"""`emonet info`: summarise a feature store or a model checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emonet.cli.console import out
from emonet.errors import EmoNetError


def info(
    path: Annotated[Path, typer.Argument(help="A feature store folder or a model checkpoint file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Summarise a feature store (tasks, partitions, classes, sizes) or a model."""
    import json

    if path.is_file():
        from emonet.models import describe_checkpoint, render_model_summary

        try:
            desc = describe_checkpoint(path)
        except ValueError as exc:
            raise EmoNetError(str(exc)) from None
        if as_json:
            out.print_json(json.dumps(desc))
        else:
            out.print(render_model_summary(desc))
        return
    from emonet.cli.render import store_table
    from emonet.store import open_store

    data = open_store(path).info()
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        out.print(store_table(data))
