"""Data-parallel training under ``torchrun``: the process group, and gradient averaging.

Every rank trains the same task at the same step (the round robin follows the global step),
so the set of parameters with gradients is the same on all ranks and one flat all-reduce
per step averages them. BatchNorm statistics stay per rank (as plain DDP without SyncBN).
"""

from __future__ import annotations

import os

import torch

from emonet.utils.devices import resolve_device


def world_info() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment (0, 1 without it)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def init(device: torch.device) -> tuple[int, int]:
    """Join the process group when run by torchrun (gloo on CPU, nccl on GPUs)."""
    import torch.distributed as dist

    rank, world = world_info()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world


def local_device(requested: str) -> torch.device:
    """This rank's device for ``--device`` (see :func:`emonet.utils.devices.resolve_device`)."""
    return resolve_device(requested)


def _average(tensors: list[torch.Tensor], world: int) -> None:
    """Replace each tensor by its mean over the ranks, with one flat all-reduce."""
    if world <= 1 or not tensors:
        return
    import torch.distributed as dist
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    flat = _flatten_dense_tensors(tensors)
    dist.all_reduce(flat)
    flat /= world
    for t, synced in zip(tensors, _unflatten_dense_tensors(flat, tensors), strict=True):
        t.copy_(synced)


def average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """Average the gradients of ``params`` over the ranks with one flat all-reduce."""
    _average([p.grad for p in params if p.grad is not None], world)


def average_running_stats(model: torch.nn.Module, world: int) -> None:
    """Average the BatchNorms' running means and variances over the ranks (each rank
    updates them from its own batches), so every rank scores, and rank 0 saves, one model."""
    stats = [
        b
        for m in model.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats
        for b in (m.running_mean, m.running_var)
    ]
    _average(stats, world)


def all_reduce_sum(t: torch.Tensor, world: int) -> torch.Tensor:
    """Sum ``t`` over the ranks in place (nothing with one rank); returns ``t``."""
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(t)
    return t


def barrier(world: int) -> None:
    """Wait for every rank (nothing with one rank)."""
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def shutdown() -> None:
    """Leave the process group, if one was joined."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
