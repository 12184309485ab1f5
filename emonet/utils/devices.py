"""The one ``--device`` and ``--precision`` vocabulary of every command (train, evaluate,
predict, extract), its parser, and the autocast context of a precision.

Devices: ``auto`` (this rank's GPU when torch sees one, else the CPU), ``cpu``, ``cuda`` (this
rank's GPU: ``LOCAL_RANK`` under torchrun, else GPU 0) and ``cuda:N`` (GPU N). Precisions:
``fp32`` (no autocast), ``bf16`` and ``fp16`` (autocast to that type), and ``auto``: bf16 where
the device computes it natively (a CPU with AVX512_BF16 or AMX, a CUDA GPU with bf16), else
fp32; training resolves ``auto`` to fp32 (bf16 training's accuracy against fp32 is unmeasured).
Importing this module does not import torch (the CLI parses these options before any command
needs torch).
"""

from __future__ import annotations

import os
import platform
import re
import sys
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING

from emonet.errors import ConfigError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda", "cuda:N")
DEVICE_CHOICES = "|".join(DEVICES)
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
# /proc/cpuinfo flags of CPUs that compute bf16 natively: AVX512_BF16 dot products (Zen 4,
# Cooper Lake and later Xeons) or AMX tiles (Sapphire Rapids and later); aarch64's "bf16" (ARMv8.6).
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
PRECISION_CHOICES = "|".join(PRECISIONS)


def check_device_name(name: object, option: str = "--device") -> str:
    """``name`` in lower case when it is one of :data:`DEVICES` (``N`` a GPU index); a
    one-line ConfigError naming ``option`` and the choices otherwise. Nothing is probed."""
    value = name.strip().lower() if isinstance(name, str) else ""
    if value in DEVICES[:3] or re.fullmatch(r"cuda:\d+", value):
        return value
    raise ConfigError(f"{option} {name!r} is not a device; use one of 'auto', 'cpu', 'cuda', 'cuda:N' (N: a GPU index)")


def check_precision(name: object, option: str = "--precision") -> str:
    """``name`` when it is one of :data:`PRECISIONS` (``auto`` unresolved: see
    :func:`resolve_precision`); a one-line ConfigError otherwise."""
    if name in PRECISIONS:
        return name
    raise ConfigError(f"{option} {name!r} is not a precision; use one of {', '.join(PRECISIONS)}")


def cpu_flags(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (x86 ``flags``, aarch64 ``Features``); empty
    where the file is missing (not Linux) or unreadable."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def native_bf16_cpu(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bf16 natively (:data:`NATIVE_BF16_FLAGS`). Without it torch
    emulates bf16 through float32 conversions: a 4096^3 bf16 matmul took over 30 s on a Zen 3
    (AVX2) against 1.2 s in fp32. Read from /proc/cpuinfo, not from torch: oneDNN's own check
    (``torch.ops.mkldnn._is_mkldnn_bf16_supported``) also says yes on AVX-512 CPUs without
    AVX512_BF16, where bf16 runs through conversions."""
    return bool(cpu_flags(cpuinfo) & NATIVE_BF16_FLAGS)


_said: set[str] = set()


def resolve_precision(name: str, device: torch.device, *, training: bool = False, option: str = "--precision") -> str:
    """The precision that runs for ``--precision name`` on ``device``: ``auto`` resolved (see
    the module's doc), anything else as given. ``bf16`` on a CPU without native bf16 runs
    (emulated, slowly) after one line on stderr saying so, once per process."""
    name = check_precision(name, option)
    if name == "auto":
        if training:
            return "fp32"
        if device.type == "cuda":
            import torch  # here, not at the top: the CLI checks spellings without importing torch (start-up time)

            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        return "bf16" if device.type == "cpu" and native_bf16_cpu() else "fp32"
    if name == "bf16" and device.type == "cpu" and not native_bf16_cpu() and "bf16" not in _said:
        _said.add("bf16")
        print(
            f"emonet: {option} bf16: this CPU ({platform.machine() or 'unknown'}) has no native bf16 "
            "(no AVX512_BF16 or AMX), so bf16 is emulated "
            "and several times slower than fp32; use --precision fp32 (or auto) here",
            file=sys.stderr,
        )
    return name


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
        if ":" not in value:  # under torchrun: more ranks on this node than GPUs
            raise ConfigError(
                f"{option} {value}: rank {index} of this node needs GPU {index}, but this machine has {count} "
                f"GPU(s): start at most {count} ranks per node (torchrun --nproc_per_node {count})"
            )
        raise ConfigError(f"{option} {value}: this machine has {count} GPU(s) (cuda:0 to cuda:{count - 1})")
    if ":" not in value:
        torch.cuda.set_device(index)
    return torch.device("cuda", index)


def autocast(device: torch.device, precision: str):
    """The autocast context of a resolved ``precision`` on ``device`` (fp32: none)."""
    import torch  # here, not at the top: the CLI checks spellings without importing torch (start-up time)

    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextmanager
def deterministic_algorithms(on: bool = True):
    """``--deterministic``: inside the block torch uses only deterministic kernels (and raises
    where an op has none), cuDNN picks no algorithm by timing, and cuBLAS gets the fixed
    workspace its determinism needs; the same seed then gives the same results on a GPU too, at
    some cost in speed (bench/README.md, "GPU check"). On the CPU emonet's ops are deterministic
    already. The previous settings come back on exit (tests and notebooks train in one process)."""
    import torch  # here, not at the top: the CLI checks spellings without importing torch (start-up time)

    if not on:
        yield
        return
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    # read by cuBLAS when this process first creates a handle: a CUDA matmul before the block
    # (none in `emonet train`) keeps its own workspace, and torch then raises at the first matmul
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1], before[2]
        if before[3] is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
