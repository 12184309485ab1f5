"""EmoNet: multi-corpus audio classification (speech emotion recognition) with
residual-adapter Wide ResNets over sharded log-mel feature stores.

    >>> import emonet
    >>> store = emonet.open_store("features/")
    >>> file, label, logmel = store.partition("acted", "train")[0]
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError as _NotInstalled
from importlib.metadata import version as _version

try:  # the one place the version is looked up (checkpoints record emonet.__version__)
    __version__ = _version("emonet")
except _NotInstalled:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_LAZY = {
    "open_store": ("emonet.store.reader", "open_store"),
    "FeatureStore": ("emonet.store.reader", "FeatureStore"),
    "FeatureConfig": ("emonet.data.features", "FeatureConfig"),
    "ExtractOptions": ("emonet.extraction.runner", "ExtractOptions"),
    "run_extract": ("emonet.extraction.runner", "run_extract"),
    "generate_demo_corpus": ("emonet.data.demo", "generate_demo_corpus"),
    "EmoNetError": ("emonet.errors", "EmoNetError"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    # heavy imports (torch, zarr) only when used
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'emonet' has no attribute {name!r}")
