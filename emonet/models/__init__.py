"""EmoNet models: Wide ResNet with residual adapters, rnn and fusion variants, modes and checkpoints.

model = build_model(ModelConfig(), {"iemocap": ["ang", "hap", "neu", "sad"]})
logits = model(x, lengths, "iemocap")   # x [batch, frames, mels], lengths [batch]

Set-up from a feature store: ``emonet.models.from_store.model_for_store``.
"""

from emonet.models.checkpoint import load_checkpoint, load_model, read_checkpoint_metadata, save_checkpoint
from emonet.models.config import ModelConfig
from emonet.models.modes import (
    MODES,
    adapter_parameters,
    apply_mode,
    setup_model,
    task_parameters,
    trainable_parameter_names,
)
from emonet.models.network import EmoNet, build_model
from emonet.models.summary import describe_checkpoint, describe_model
from emonet.models.task_files import attach_task, backbone_fingerprint, export_task

__all__ = [
    "MODES",
    "EmoNet",
    "ModelConfig",
    "adapter_parameters",
    "apply_mode",
    "attach_task",
    "backbone_fingerprint",
    "build_model",
    "describe_checkpoint",
    "describe_model",
    "export_task",
    "load_checkpoint",
    "load_model",
    "read_checkpoint_metadata",
    "save_checkpoint",
    "setup_model",
    "task_parameters",
    "trainable_parameter_names",
]
