"""The one ``--device`` and ``--precision`` vocabulary of every command (train, evaluate,
predict, extract), its parser, and the autocast context of a precision.

Devices: ``auto`` (this rank's GPU when torch sees one, else the CPU), ``cpu``, ``cuda`` (this
rank's GPU: ``LOCAL_RANK`` under torchrun, else GPU 0) and ``cuda:N`` (GPU N). Precisions:
``fp32`` (no autocast), ``bf16`` and ``fp16`` (autocast to that type). Importing this module
does not import torch (the CLI parses these options before any command needs torch).
"""

from __future__ import annotations

import os
import re
from contextlib import nullcontext
from typing import TYPE_CHECKING

from emonet.errors import ConfigError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda", "cuda:N")
DEVICE_CHOICES = "|".join(DEVICES)
PRECISIONS = ("fp32", "bf16", "fp16")
PRECISION_CHOICES = "|".join(PRECISIONS)


def check_device_name(name: object, option: str = "--device") -> str:
    """``name`` in lower case when it is one of :data:`DEVICES` (``N`` a GPU index); a
    one-line ConfigError naming ``option`` and the choices otherwise. Nothing is probed."""
    value = name.strip().lower() if isinstance(name, str) else ""
    if value in DEVICES[:3] or re.fullmatch(r"cuda:\d+", value):
        return value
    raise ConfigError(f"{option} {name!r} is not a device; use one of 'auto', 'cpu', 'cuda', 'cuda:N' (N: a GPU index)")


def check_precision(name: object, option: str = "--precision") -> str:
    """``name`` when it is one of :data:`PRECISIONS`; a one-line ConfigError otherwise."""
    if name in PRECISIONS:
        return name
    raise ConfigError(f"{option} {name!r} is not a precision; use one of {', '.join(PRECISIONS)}")


def resolve_device(name: str | torch.device, option: str = "--device") -> torch.device:
    """The torch device of a ``--device`` value (see the module's doc).

    ``cuda`` and ``auto`` take this rank's GPU under torchrun (``LOCAL_RANK``) and make it
    the current CUDA device, as data-parallel training needs.

    Raises:
        ConfigError: a spelling outside the vocabulary, ``cuda`` without a visible GPU, or
            ``cuda:N`` beyond the GPUs this machine has (one line naming ``option``).
    """
    import torch  # here, not at the top: the CLI checks spellings without importing torch (start-up time)

    value = check_device_name(str(name), option)
    if value == "cpu" or (value == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise ConfigError(f"{option} {value}: no CUDA GPU is visible on this machine; use {option} cpu")
    index = int(value.split(":")[1]) if ":" in value else int(os.environ.get("LOCAL_RANK", "0"))
    if index >= count:
        raise ConfigError(f"{option} {value}: this machine has {count} GPU(s) (cuda:0 to cuda:{count - 1})")
    if ":" not in value:
        torch.cuda.set_device(index)
    return torch.device("cuda", index)


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision`` on ``device`` (fp32: none)."""
    import torch  # here, not at the top: the CLI checks spellings without importing torch (start-up time)

    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
