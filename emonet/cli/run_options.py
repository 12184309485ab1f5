"""Options about where and how a command runs, shared by the commands that compute
(``emonet extract``, ``train``, ``evaluate``, ``predict``). One short flag, one meaning:
``-j`` is always the number of workers (``-w`` is the training window in seconds)."""

from __future__ import annotations

from typing import Annotated

import typer

from emonet.errors import ConfigError
from emonet.utils.devices import DEVICE_CHOICES, PRECISION_CHOICES, check_device_name, check_precision


def parse_device(text: str) -> str:
    """A ``--device`` value of the one vocabulary (:mod:`emonet.utils.devices`), in lower case;
    anything else is refused by the parser (exit code 2, one line naming the choices)."""
    try:
        return check_device_name(text)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc).removeprefix("--device ")) from None


def parse_precision(text: str) -> str:
    """A ``--precision`` value (fp32, bf16, fp16, auto); anything else is refused by the parser."""
    try:
        return check_precision(text)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc).removeprefix("--precision ")) from None


Device = Annotated[
    str,
    typer.Option(
        "--device",
        parser=parse_device,
        metavar=DEVICE_CHOICES,
        help="Where the tensors are computed: auto (a GPU when torch sees one, else the CPU), cpu, cuda "
        "(this rank's GPU under torchrun) or cuda:N.",
    ),
]
Precision = Annotated[
    str,
    typer.Option(
        "--precision",
        parser=parse_precision,
        metavar=PRECISION_CHOICES,
        help="fp32 (the default), bf16 / fp16 autocast of the network (fp16: CUDA only; bf16 is fast only "
        "on a CPU with AVX512_BF16 or AMX, or a GPU), or auto: bf16 where native, else fp32 (training: fp32).",
    ),
]
Workers = Annotated[
    int | None,
    typer.Option("--workers", "-j", min=0, help="Parallel worker processes (default: CPU count)."),
]
