"""Optimisers with one parameter group per task (plus one for the shared network) and the
original's individual weight decay, an L2 penalty on a task's adapter kernels."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from emonet.errors import ConfigError

OPTIMIZERS = ("sgd", "rmsprop", "adam", "adadelta", "adamw")


def individual_weight_decay(n_train: int) -> float:
    """The original's L2 factor on a task's adapter kernels by its training-set size:
    n >= 10000: 1e-6; 1000..9999: 5e-4; 500..999: 2e-3; < 500: 5e-3."""
    if n_train >= 10000:
        return 1e-6
    if n_train >= 1000:
        return 5e-4
    if n_train >= 500:
        return 2e-3
    return 5e-3


def parameter_groups(model, tasks: Sequence[str]) -> list[dict]:
    """Trainable parameters as groups: ``shared`` and one per task (named ``task:<name>``);
    empty groups are left out."""
    roles = model.tensor_roles()
    params = dict(model.named_parameters())
    groups: dict[str, list] = {"shared": []}
    for t in tasks:
        groups[f"task:{t}"] = []
    for name, p in params.items():
        if not p.requires_grad:
            continue
        owner = roles[name][0]
        key = "shared" if owner is None else f"task:{owner}"
        if key in groups:
            groups[key].append(p)
    return [{"name": k, "params": v} for k, v in groups.items() if v]


def build_optimizer(name: str, groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """sgd (momentum 0.9) | rmsprop | adam | adadelta | adamw, with the Keras defaults the
    original used (rho 0.9 / 0.95, epsilon 1e-7)."""
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, alpha=0.9, eps=1e-7)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, eps=1e-7)
    if name == "adadelta":
        return torch.optim.Adadelta(groups, lr=lr, rho=0.95, eps=1e-7)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, eps=1e-7)
    raise ConfigError(f"unknown --optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def l2_penalty(params: Sequence[torch.Tensor], factor: float) -> torch.Tensor | None:
    """factor * sum of squares of ``params`` (Keras' l2 regulariser), or None."""
    live = [p for p in params if p.requires_grad]
    if not live or factor <= 0:
        return None
    return factor * sum((p.float() ** 2).sum() for p in live)
