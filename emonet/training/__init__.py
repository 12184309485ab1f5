"""Training: the streaming data path, the multi-task trainer and its experiment folder (model
set-up from a store is ``emonet.models.from_store``).

>>> from emonet.training import batches
>>> for x, lengths, labels in batches("features/", "acted", batch_size=64, window=4.0):
...     ...
"""

from __future__ import annotations

_LAZY = {
    "batches": ("emonet.training.data", "batches"),
    "TrainConfig": ("emonet.training.config", "TrainConfig"),
    "Trainer": ("emonet.training.trainer", "Trainer"),
    "Callback": ("emonet.training.callbacks", "Callback"),
    "RoundRobin": ("emonet.training.task_schedule", "RoundRobin"),
    "EveryTask": ("emonet.training.task_schedule", "EveryTask"),
    "train": ("emonet.training.api", "train"),
    "resume": ("emonet.training.api", "resume"),
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    # torch and the store backends are imported only when used
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'emonet.training' has no attribute {name!r}")
