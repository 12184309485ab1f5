"""The EmoNet model: cnn, rnn or fusion backbone, masked pooling, per-task heads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from emonet.errors import ConfigError, ModelError, UnknownTaskError
from emonet.models.config import ModelConfig
from emonet.models.heads import Head
from emonet.models.masking import time_mask
from emonet.models.norm import BATCH_NORMS
from emonet.models.pooling import GridAvgPool, Pooling
from emonet.models.resnet import WideResNet
from emonet.models.rnn import RecurrentEncoder
from emonet.models.task_parts import TaskDict, validate_task_name

# Role of a state-dict entry: (task, category) for a task's part, (None, kind) for shared ones.
Role = tuple[str | None, str]


class EmoNet(nn.Module):
    """Multi-task audio classifier; ``model(x, lengths, task)`` -> logits of that task.

    Per-task parts (adapters, BatchNorms, attention, head) live in ``TaskDict``s keyed by
    task name; everything else is shared. ``tasks`` maps each task to its ordered labels.

    A BatchNorm whose weight is frozen (``requires_grad=False``, see ``apply_mode``) stays
    in eval mode under ``model.train()``, so its running statistics are frozen too.

    What a checkpoint records beside the weights travels with the model: ``feature_config``
    (the log-mel config it was built for, or None), ``norm_stats`` (task -> {mean, std} of
    its input normalisation) and ``training`` (``{"mode", "tasks"}`` of the last
    ``apply_mode``, or None).
    """

    def __init__(self, config: ModelConfig, tasks: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__()
        self.config = config
        self.tasks: dict[str, list[str]] = {}
        self.feature_config: dict | None = None
        self.norm_stats: dict[str, dict | None] = {}
        self.training_record: dict | None = None
        lam, shared = config.attention_lambda, config.share_feature_layer
        self.cnn = WideResNet(config) if config.uses_cnn else None
        self.cnn_pool = _cnn_pooling(config, self.cnn.out_channels) if self.cnn else None
        self.rnn = RecurrentEncoder(config) if config.uses_rnn else None
        self.rnn_pool = Pooling(self.rnn.out_dim, config.classifier, shared, lam) if self.rnn else None
        cnn_dim = getattr(self.cnn_pool, "out_dim", self.cnn.out_channels) if self.cnn else 0
        self.feature_dim = cnn_dim + (self.rnn.out_dim if self.rnn else 0)
        self.heads = TaskDict("head", None)
        self._apply_memory_format()
        for name, classes in (tasks or {}).items():
            self.add_task(name, classes)

    # ----------------------------------------------------------------- tasks
    def task_dicts(self) -> Iterator[tuple[str, TaskDict]]:
        """(qualified name, TaskDict) for every per-task container, heads included."""
        for name, module in self.named_modules():
            if isinstance(module, TaskDict):
                yield name, module

    def add_task(self, name: str, classes: Sequence[str], *, init_from: str | None = None) -> None:
        """Add a task: new parts as a new model's (he_normal adapters, fresh BNs, new attention
        and head), or with ``init_from`` a copy of that task's adapters, BNs and attention (new head)."""
        validate_task_name(name)
        classes = _validate_classes(name, classes)
        if name in self.tasks:
            raise ModelError(f"task {name!r} already exists (tasks: {', '.join(self.tasks)})")
        if init_from is not None:
            self._check_task(init_from)
        ref = next(self.parameters())
        for _, td in self.task_dicts():
            if td is self.heads:
                continue
            part = td.add(name).to(device=ref.device, dtype=ref.dtype)
            if init_from is not None:
                part.load_state_dict(td[init_from].state_dict())
        self.heads[name] = Head(self.feature_dim, len(classes), self.config.head_dropout).to(
            device=ref.device, dtype=ref.dtype
        )
        self.tasks[name] = classes
        self._apply_memory_format()
        self.train(self.training)

    def remove_task(self, name: str) -> None:
        """Drop a task and all its parts."""
        self._check_task(name)
        for _, td in self.task_dicts():
            del td[name]
        del self.tasks[name]
        self.norm_stats.pop(name, None)

    def tensor_roles(self) -> dict[str, Role]:
        """Every state-dict key -> (task, category) or (None, shared kind: conv/rnn/attention)."""
        roles: dict[str, Role] = {}
        for prefix, td in self.task_dicts():
            for task, part in td.items():
                for key in part.state_dict():
                    roles[f"{prefix}.{task}.{key}"] = (task, td.category)
        for key in self.state_dict():
            if key not in roles:
                roles[key] = (None, _shared_kind(key))
        return roles

    # --------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None, task: str) -> torch.Tensor:
        """x float [batch, frames, mels], lengths int [batch] (valid frames, None = all),
        task name -> logits [batch, n_classes(task)]."""
        self._check_task(task)
        lengths = self._check_inputs(x, lengths)
        if self.config.input_frames is not None and x.shape[1] < self.config.input_frames:  # avgpool: a fixed size
            x = F.pad(x, (0, 0, 0, self.config.input_frames - x.shape[1]))
        pooled = []
        if self.cnn is not None:
            img = x.transpose(1, 2).unsqueeze(1)  # (batch, 1, mels, frames)
            if self.config.memory_format == "channels_last":
                img = img.contiguous(memory_format=torch.channels_last)
            pooled.append(self._pool_cnn(*self.cnn(img, lengths, task), task))
        if self.rnn is not None:
            seq, lens = self.rnn(x, lengths, task)
            pooled.append(self.rnn_pool(seq, time_mask(lens, seq.shape[1]), task))
        z = pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=1)
        return self.heads[task](z)

    def _pool_cnn(self, feat: torch.Tensor, lens: torch.Tensor, task: str) -> torch.Tensor:
        """The cnn's map [batch, C, F, T] with its valid lengths -> the pooled vector."""
        if isinstance(self.cnn_pool, GridAvgPool):
            return self.cnn_pool(feat, lens)
        b, c, f, t = feat.shape
        seq = feat.permute(0, 2, 3, 1).reshape(b, f * t, c)  # positions (freq, time)
        mask = time_mask(lens, t)[:, None, :].expand(b, f, t).reshape(b, f * t)
        return self.cnn_pool(seq, mask, task)

    def train(self, mode: bool = True) -> EmoNet:
        super().train(mode)
        if mode:
            for module in self.modules():
                if isinstance(module, BATCH_NORMS) and module.weight is not None and not module.weight.requires_grad:
                    module.eval()
        return self

    # --------------------------------------------------------------- helpers
    def _check_task(self, task: str) -> None:
        if task not in self.tasks:
            known = ", ".join(self.tasks) or "(none)"
            raise UnknownTaskError(f"unknown task {task!r}; this model has tasks: {known}")

    def _check_inputs(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        if x.dim() != 3 or x.shape[2] != self.config.n_mels:
            raise ModelError(f"expected x of shape [batch, frames, {self.config.n_mels}], got {list(x.shape)}")
        fixed = self.config.input_frames
        if fixed is not None and x.shape[1] > fixed:
            raise ModelError(
                f"this avgpool model takes at most {fixed} frames (its -w window), got {x.shape[1]}: "
                "score one window per clip"
            )
        if lengths is None:
            return torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)
        if lengths.shape != (x.shape[0],) or lengths.is_floating_point():
            raise ModelError(
                f"lengths must be an integer tensor of shape [{x.shape[0]}], got {lengths.dtype} {list(lengths.shape)}"
            )
        lengths = lengths.to(device=x.device, dtype=torch.long)
        if not torch.compiler.is_compiling():
            lo, hi = int(lengths.min()), int(lengths.max())
            if lo < 1 or hi > x.shape[1]:
                raise ModelError(f"lengths must lie in [1, {x.shape[1]}] (frames), got {lo}..{hi}")
        return lengths

    def _apply_memory_format(self) -> None:
        if self.config.memory_format == "channels_last" and self.cnn is not None:
            self.cnn.to(memory_format=torch.channels_last)


def _cnn_pooling(config: ModelConfig, channels: int) -> nn.Module:
    """The cnn's top: the original's 8x8 avgpool over the map, or a pooling over positions."""
    if config.classifier == "avgpool":
        return GridAvgPool(channels, config.n_mels, config.input_frames)
    return Pooling(channels, config.classifier, config.share_feature_layer, config.attention_lambda)


def _shared_kind(key: str) -> str:
    if key.startswith("cnn."):
        return "conv"
    if key.startswith("rnn."):
        return "rnn"
    if "_pool." in key:
        return "attention"
    return "other"


def _validate_classes(task: str, classes: Sequence[str]) -> list[str]:
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise ConfigError(f"classes of task {task!r} must be a list of labels, got {classes!r}")
    labels = list(classes)
    if len(labels) < 2:
        raise ConfigError(f"task {task!r} needs at least 2 classes, got {labels!r}")
    if not all(isinstance(c, str) and c for c in labels):
        raise ConfigError(f"class labels of task {task!r} must be non-empty strings, got {labels!r}")
    if len(set(labels)) != len(labels):
        raise ConfigError(f"class labels of task {task!r} repeat: {labels!r}")
    return labels


def build_model(config: ModelConfig | None = None, tasks: Mapping[str, Sequence[str]] | None = None) -> EmoNet:
    """A new model for ``config`` with ``tasks`` (task name -> ordered class labels)."""
    return EmoNet(config or ModelConfig(), tasks)
