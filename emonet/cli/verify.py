"""`emonet verify STORE`: read every stored block and check it against its checksum."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emonet.cli.console import out
from emonet.errors import StoreCorruptError


def verify(
    store: Annotated[Path, typer.Argument(help="The feature store folder to check.")],
) -> None:
    """Check every block of a feature store against its checksum (exit 3 on any damage).

    Example: emonet verify features/
    """
    from emonet.store.verify import verify_store  # lazy: keeps torch and zarr off 'emonet --help'

    report = verify_store(store)
    for p in report.partitions:
        status = f"ok ({p.files} files, {p.blocks} blocks)" if p.ok else f"DAMAGED ({len(p.problems)} problem(s))"
        out.print(f"{p.task}/{p.partition}: {status}", highlight=False)
        for line in p.problems:
            out.print(f"  - {line}", highlight=False, soft_wrap=True, markup=False)
    for line in report.problems:
        out.print(f"store: {line}", highlight=False, soft_wrap=True, markup=False)
    if not report.ok:
        n = len(report.damaged) + len(report.problems)
        raise StoreCorruptError(
            f"{store}: {n} damaged part(s) found (listed above); restore them from a copy, or re-run the "
            "'emonet extract' command that made the store with --overwrite (it re-extracts the damaged partitions)"
        )
    out.print(f"{store}: every block matches its checksum", highlight=False)
