"""Data-parallel training under ``torchrun``: the process group, and gradient averaging.

Every rank must train the same task at the same step (all follow one task schedule over the
global step), so the set of parameters with gradients is the same on all ranks and one flat
all-reduce per step averages them. Before it, the ranks compare (task, gradient elements)
with a small fixed-size all-gather: ranks that disagree stop in one line instead of hanging
or mixing the gradients of different tasks. BatchNorm statistics stay per rank (as plain
DDP without SyncBN).
"""

from __future__ import annotations

import os

import torch

from emonet.errors import ConfigError, TrainingError
from emonet.models.norm import BATCH_NORMS


def world_info() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment (0, 1 without it)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def init(device: torch.device) -> tuple[int, int]:
    """Join the process group when run by torchrun (gloo on CPU, nccl on GPUs; the environment
    variable EMONET_DIST_BACKEND overrides it, e.g. gloo for several ranks on one GPU, which
    nccl refuses: bench/gpu_check.sh)."""
    import torch.distributed as dist

    rank, world = world_info()
    if world > 1 and not dist.is_initialized():
        backend = os.environ.get("EMONET_DIST_BACKEND") or ("nccl" if device.type == "cuda" else "gloo")
        if backend == "nccl":
            check_gpu_per_rank(device)
        dist.init_process_group(backend)
    return rank, world


def check_gpu_per_rank(device: torch.device) -> None:
    """NCCL refuses two ranks on one GPU, with a traceback from every rank ("Duplicate GPU
    detected"): say so in one line first (ConfigError), with the two ways out."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if device.index is not None and device.index != local_rank and local_world > 1:
        raise ConfigError(
            f"--device cuda:{device.index} puts rank {local_rank} on GPU {device.index}, and NCCL refuses two "
            f"ranks on one GPU: use --device cuda (each of this node's {local_world} ranks takes its own GPU), "
            "or EMONET_DIST_BACKEND=gloo to share one GPU"
        )


def _average(tensors: list[torch.Tensor], world: int) -> None:
    """Replace each tensor by its mean over the ranks, with one flat all-reduce."""
    if world <= 1 or not tensors:
        return
    import torch.distributed as dist

    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset : offset + n].view_as(t))
        offset += n


def check_same_step(task: int, n_grad: int, world: int, names: list[str], step: int, device: torch.device) -> None:
    """Stop (TrainingError, on every rank) unless all ranks train task ``task`` with
    ``n_grad`` gradient elements at this step: one all-gather of two numbers per rank."""
    if world <= 1:
        return
    import torch.distributed as dist

    mine = torch.tensor([task, n_grad], dtype=torch.int64, device=device)
    every = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(every, mine)
    seen = [tuple(int(v) for v in t.tolist()) for t in every]
    if len(set(seen)) > 1:

        def who(k: int, n: int) -> str:
            return f"task {names[k]!r} ({n} gradient values)" if 0 <= k < len(names) else f"task #{k} ({n} values)"

        ranks = ", ".join(f"rank {r} trains {who(k, n)}" for r, (k, n) in enumerate(seen))
        raise TrainingError(
            f"the ranks disagree at step {step}: {ranks}; every rank must follow the same task schedule "
            "with the same tasks and mode"
        )


def average_gradients(
    params: list[torch.nn.Parameter], world: int, task: int = 0, names: list[str] | None = None, step: int = 0
) -> None:
    """Average the gradients of ``params`` over the ranks with one flat all-reduce, after
    checking that every rank trains the same task (``task``, an index into ``names``)."""
    grads = [p.grad for p in params if p.grad is not None]
    if world <= 1:
        return
    device = grads[0].device if grads else next(iter(params)).device
    check_same_step(task, sum(g.numel() for g in grads), world, names or [], step, device)
    _average(grads, world)


def average_running_stats(model: torch.nn.Module, world: int) -> None:
    """Average the BatchNorms' running means and variances over the ranks (each rank
    updates them from its own batches), so every rank scores, and rank 0 saves, one model."""
    stats = [
        b
        for m in model.modules()
        if isinstance(m, BATCH_NORMS) and m.track_running_stats
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
