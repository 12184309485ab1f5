"""EmoNet models: Wide ResNet with residual adapters, rnn and fusion variants, modes and checkpoints.

model = build_model(ModelConfig(), {"iemocap": ["ang", "hap", "neu", "sad"]})
logits = model(x, lengths, "iemocap")   # x [batch, frames, mels], lengths [batch]

Set-up from a feature store: ``emonet.models.from_store.model_for_store``.
"""

from __future__ import annotations

# name -> the module that defines it; each is imported when first used, so that the
# configuration (ModelConfig, MODES) reads without loading torch (the command line's defaults)
_LAZY = {
    "MODES": "emonet.models.config",
    "EmoNet": "emonet.models.network",
    "ModelConfig": "emonet.models.config",
    "adapter_parameters": "emonet.models.modes",
    "apply_mode": "emonet.models.modes",
    "attach_task": "emonet.models.task_files",
    "backbone_fingerprint": "emonet.models.task_files",
    "build_model": "emonet.models.network",
    "describe_checkpoint": "emonet.models.summary",
    "describe_model": "emonet.models.summary",
    "export_task": "emonet.models.task_files",
    "load_checkpoint": "emonet.models.checkpoint",
    "load_model": "emonet.models.checkpoint",
    "read_checkpoint_metadata": "emonet.models.checkpoint",
    "save_checkpoint": "emonet.models.checkpoint",
    "setup_model": "emonet.models.modes",
    "task_parameters": "emonet.models.modes",
    "trainable_parameter_names": "emonet.models.modes",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'emonet.models' has no attribute {name!r}")
