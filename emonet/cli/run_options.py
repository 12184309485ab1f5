"""Options about where and how a command runs, shared by the commands that compute
(``emonet extract``, later ``train``, ``evaluate``, ``predict``). One short flag, one meaning:
``-j`` is always the number of workers (``-w`` is the training window in seconds)."""

from __future__ import annotations

import re
from typing import Annotated

import typer

DEVICE_CHOICES = "cpu|cuda|cuda:N"


def parse_device(text: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` (case-insensitive); anything else is refused by the parser.

    Args:
        text: the value given to ``--device``.

    Returns:
        The device name in lower case.
    """
    value = text.strip().lower()
    if value in ("cpu", "cuda") or re.fullmatch(r"cuda:\d+", value):
        return value
    raise typer.BadParameter(f"{text!r} is not one of 'cpu', 'cuda', 'cuda:N' (N: a GPU index)")


Device = Annotated[
    str,
    typer.Option("--device", parser=parse_device, metavar=DEVICE_CHOICES, help="Where the tensors are computed."),
]
Workers = Annotated[
    int | None,
    typer.Option("--workers", "-j", min=0, help="Parallel worker processes (default: CPU count)."),
]
