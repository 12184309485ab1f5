"""Optimisers by name, with one parameter group per task (plus one for the shared network), the
original's time-based learning-rate decay, and its individual weight decay, an L2 penalty on a
task's adapter kernels.

``OPTIMIZERS`` maps a name to its :class:`OptimizerSpec` (its factory, the parameters it is
built with besides the learning rate, and one line of help); ``register_optimizer`` adds one.
This module does not import torch until an optimiser is built, so that the command line can
list the optimisers without loading it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emonet.errors import ConfigError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class OptimizerSpec:
    """A registered optimiser: ``factory(groups, lr=lr, **defaults)`` builds it."""

    name: str
    factory: Callable[..., torch.optim.Optimizer]
    help: str
    defaults: Mapping[str, Any] = field(default_factory=dict)


OPTIMIZERS: dict[str, OptimizerSpec] = {}


def register_optimizer(
    name: str, factory: Callable[..., torch.optim.Optimizer], *, help: str, defaults: Mapping[str, Any] | None = None
) -> OptimizerSpec:
    """Add an optimiser that ``TrainConfig.optimizer`` (``--optimizer``) can name.

    Args:
        name: the name, as ``--optimizer`` takes it.
        factory: ``factory(param_groups, lr=lr, **defaults)``, e.g. a ``torch.optim`` class.
        help: one line for ``emonet train --help``.
        defaults: the parameters besides the learning rate it is built with.

    Returns:
        The registered spec.
    """
    if name in OPTIMIZERS:
        raise ValueError(f"an optimiser named {name!r} is already registered; register it under another name")
    spec = OptimizerSpec(name, factory, " ".join(help.split()), dict(defaults or {}))
    OPTIMIZERS[name] = spec
    return spec


def _torch_optim(class_name: str) -> Callable[..., torch.optim.Optimizer]:
    """The factory of ``torch.optim.<class_name>``, which imports torch when it is called."""

    def build(groups, **kwargs):
        import torch  # here, not at the top: the command line reads OPTIMIZERS without loading torch

        return getattr(torch.optim, class_name)(groups, **kwargs)

    build.__qualname__ = build.__name__ = f"torch.optim.{class_name}"
    return build


# The Keras defaults the original used: rho 0.9 / 0.95, epsilon 1e-7 (torch's RMSprop calls rho alpha).
register_optimizer("sgd", _torch_optim("SGD"), help="stochastic gradient descent", defaults={"momentum": 0.9})
register_optimizer("rmsprop", _torch_optim("RMSprop"), help="RMSprop", defaults={"alpha": 0.9, "eps": 1e-7})
register_optimizer("adam", _torch_optim("Adam"), help="Adam", defaults={"eps": 1e-7})
register_optimizer("adadelta", _torch_optim("Adadelta"), help="Adadelta", defaults={"rho": 0.95, "eps": 1e-7})
register_optimizer("adamw", _torch_optim("AdamW"), help="Adam with decoupled weight decay", defaults={"eps": 1e-7})


def optimizer_help(spec: OptimizerSpec) -> str:
    """``name: help (param value, ...)``, one optimiser's line in ``--optimizer``'s help."""
    params = ", ".join(f"{k} {v:g}" for k, v in spec.defaults.items())
    return f"{spec.name}: {spec.help}" + (f" ({params})" if params else "")


def _size_table(n_train: int, batch_size: int) -> float:
    """The original's factor by training-set size, rounded up to whole batches:
    n >= 10000: 1e-6; 1000..9999: 5e-4; 500..999: 2e-3; < 500: 5e-3."""
    n = math.ceil(n_train / batch_size) * batch_size
    if n >= 10000:
        return 1e-6
    if n >= 1000:
        return 5e-4
    if n >= 500:
        return 2e-3
    return 5e-3


def individual_weight_decay(n_train: int, batch_size: int = 1) -> float:
    """The L2 factor on a task's adapter kernels with ``-iwd``: the size table (``_size_table``)
    of its training-set size rounded up to whole batches of ``batch_size``."""
    return _size_table(n_train, batch_size)


def sgd_decay(n_train: int, batch_size: int, iwd: bool) -> float:
    """The original's time-based SGD decay d of a task (lr_t = lr / (1 + d t)): 1e-6 with
    ``-iwd`` (the size table is then the adapters' L2 factor), else the size table of its
    training-set size rounded up to whole batches."""
    return 1e-6 if iwd else _size_table(n_train, batch_size)


def task_decay(optimizer: str, n_train: int, batch_size: int, iwd: bool) -> float:
    """The decay an optimiser serving this task gets: ``sgd_decay`` for SGD; 0 for the others
    (the original decayed SGD only)."""
    return sgd_decay(n_train, batch_size, iwd) if optimizer == "sgd" else 0.0


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


def build_optimizer(name: str, groups: list[dict], lr: float, decay: float = 0.0) -> torch.optim.Optimizer:
    """The registered optimiser ``name`` over ``groups`` at learning rate ``lr``, with its defaults.

    ``decay`` d > 0 adds Keras' time-based decay: the update number t (0 for the first, counted
    by this optimiser) runs at lr / (1 + d t). A group may carry its own ``"decay"``. The count
    and the base rate live in the param groups (``decay_updates``, ``decay_lr``), so
    ``state_dict``/``load_state_dict`` carry them: a resumed optimiser continues the same decay.
    """
    spec = OPTIMIZERS.get(name)
    if spec is None:
        raise ConfigError(f"unknown --optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    optimizer = spec.factory(groups, lr=lr, **spec.defaults)
    for group in optimizer.param_groups:
        group.setdefault("decay", float(decay))
        group.setdefault("decay_lr", group["lr"])
        group.setdefault("decay_updates", 0)
    optimizer.register_step_pre_hook(_time_decay)
    return optimizer


def _time_decay(optimizer, args, kwargs) -> None:
    """Before each update: lr = decay_lr / (1 + decay * decay_updates), then count the update."""
    for group in optimizer.param_groups:
        t = group.get("decay_updates", 0)  # absent in the state of a run saved before the decay existed
        if group.get("decay", 0.0) > 0:
            group["lr"] = group["decay_lr"] / (1.0 + group["decay"] * t)
        group["decay_updates"] = t + 1


def l2_penalty(params: Sequence[torch.Tensor], factor: float) -> torch.Tensor | None:
    """factor * sum of squares of ``params`` (Keras' l2 regulariser), or None."""
    live = [p for p in params if p.requires_grad]
    if not live or factor <= 0:
        return None
    return factor * sum((p.float() ** 2).sum() for p in live)
