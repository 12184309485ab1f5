"""Per-task parts: a ModuleDict keyed by task name that knows how to grow a new entry."""

from __future__ import annotations

import re
from collections.abc import Callable

from torch import nn

from emonet.errors import ConfigError, ModelError

# What a task's part is; used by modes (what trains) and the summary (overhead breakdown):
# 1x1 / bottleneck adapters, BatchNorms, the rnn's LayerNorm, attention pooling, the head.
CATEGORIES = ("adapters", "bn", "norm", "attention", "head")

_TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


def validate_task_name(name: object) -> str:
    """Task names become parameter-name segments: letters, digits, '_' and '-' only."""
    if not isinstance(name, str) or not _TASK_NAME.match(name):
        raise ConfigError(
            f"invalid task name {name!r}: use letters, digits, '_' or '-', starting with a letter or digit"
        )
    return name


class TaskDict(nn.ModuleDict):
    """One module per task, all built by ``factory``; ``category`` says what kind of part it is.

    Parameter names are ``<owner>.<attr>.<task>.<...>``: stable across runs and processes,
    so checkpoints and task files match by name.
    """

    def __init__(self, category: str, factory: Callable[[], nn.Module] | None) -> None:
        super().__init__()
        if category not in CATEGORIES:
            raise ValueError(f"unknown task-part category {category!r}")
        self.category = category
        self.factory = factory  # a functools.partial of plain values (deepcopy-safe)

    def add(self, task: str) -> nn.Module:
        if task in self:
            raise ModelError(f"task {task!r} already has a {self.category} part")
        if self.factory is None:
            raise TypeError("this TaskDict has no factory; assign its entries directly")
        module = self.factory()
        self[task] = module
        return module

    def extra_repr(self) -> str:
        return f"category={self.category!r}"


def reset_to_identity(module: nn.Module) -> None:
    """Make a fresh adapter a no-op (used when an adapter-free model gains adapters)."""
    if hasattr(module, "reset_to_identity"):
        module.reset_to_identity()
    elif isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.zeros_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    else:
        raise TypeError(f"don't know how to make {type(module).__name__} an identity adapter")
