"""The original EmoNet's optimisers and L2 terms of a run: one optimiser per task in multi-task
training (its own momentum over the shared weights, its own update count and SGD decay), one
for a single task or with ``--shared-optimizer``; L2 on the shared 3x3 and the adapter kernels."""

from __future__ import annotations

import torch

from emonet.models import adapter_parameters
from emonet.training.config import TrainConfig
from emonet.training.optim import build_optimizer, individual_weight_decay, parameter_groups, task_decay


def l2_penalties(model, tasks: dict, config: TrainConfig) -> dict[str, list]:
    """task -> [(params, L2 factor)], the original's: 1e-6 (``shared_l2``) on the shared 3x3
    kernels and on the task's adapter kernels; with -iwd the adapters' factor is the size table.

    Args:
        model: the run's model.
        tasks: task -> its TaskData (``n_train``).
        config: the run's config.
    """
    roles = model.tensor_roles()
    shared = [
        p
        for n, p in model.named_parameters()
        if roles[n][0] is None and p.dim() == 4 and p.shape[-1] == 3 and p.requires_grad
    ]
    out = {}
    for t, d in tasks.items():
        terms = [(shared, config.shared_l2)]
        if config.individual_weight_decay:
            adapter_l2 = individual_weight_decay(d.n_train, config.batch_size)
        else:
            adapter_l2 = config.shared_l2  # the original's 1e-6 on every adapter kernel too
        terms.append((adapter_parameters(model, t), adapter_l2))
        out[t] = [(ps, f) for ps, f in terms if f > 0 and any(p.requires_grad for p in ps)]
    return out


def task_optimizers(
    model, tasks: dict, config: TrainConfig, lr: float
) -> list[tuple[str, list[str], torch.optim.Optimizer]]:
    """Fresh optimisers at ``lr``: [(resume-state name, the tasks it steps, optimiser)].

    In multi-task one per task over the shared weights and the task's parts, each with its
    task's SGD decay (the original's); one over everything for a single task or
    ``shared_optimizer`` (there a task's group decays as its task, the shared group as the
    largest task: the smallest decay).
    """
    names = list(tasks)
    decays = {
        t: task_decay(config.optimizer, d.n_train, config.batch_size, config.individual_weight_decay)
        for t, d in tasks.items()
    }
    owners = [names] if config.shared_optimizer or len(names) == 1 else [[t] for t in names]
    out = []
    for owned in owners:
        groups = parameter_groups(model, owned)
        for g in groups:
            name = g["name"]
            g["decay"] = decays[name[5:]] if name.startswith("task:") else min(decays[t] for t in owned)
        state_name = "optimizer" if len(owners) == 1 else f"optimizer:{owned[0]}"
        out.append((state_name, owned, build_optimizer(config.optimizer, groups, lr)))
    return out
