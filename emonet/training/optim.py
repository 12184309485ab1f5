"""Optimisers by name, with one parameter group per task (plus one for the shared network), and
the original's individual weight decay, an L2 penalty on a task's adapter kernels.

``OPTIMIZERS`` maps a name to its :class:`OptimizerSpec` (its factory, the parameters it is
built with besides the learning rate, and one line of help); ``register_optimizer`` adds one.
This module does not import torch until an optimiser is built, so that the command line can
list the optimisers without loading it.
"""

from __future__ import annotations

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
    """The registered optimiser ``name`` over ``groups`` at learning rate ``lr``, with its defaults."""
    spec = OPTIMIZERS.get(name)
    if spec is None:
        raise ConfigError(f"unknown --optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return spec.factory(groups, lr=lr, **spec.defaults)


def l2_penalty(params: Sequence[torch.Tensor], factor: float) -> torch.Tensor | None:
    """factor * sum of squares of ``params`` (Keras' l2 regulariser), or None."""
    live = [p for p in params if p.requires_grad]
    if not live or factor <= 0:
        return None
    return factor * sum((p.float() ** 2).sum() for p in live)
