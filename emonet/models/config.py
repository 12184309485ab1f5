"""Model configuration: one frozen dataclass, JSON-safe, validated on construction."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from emonet.errors import ConfigError

MODES = ("scratch", "finetune", "last-layer", "adapters")  # the training modes (emonet.models.modes)
MODEL_TYPES = ("cnn", "rnn", "fusion")
ADAPTER_TYPES = ("parallel", "series", "none")
CLASSIFIERS = ("avgpool", "attention", "meanpool")
MEMORY_FORMATS = ("contiguous", "channels_last")
# Aliases accepted for `classifier` (the original CLI spelled the attention top "FCNAttention").
CLASSIFIER_ALIASES = {"fcnattention": "attention", "fcn_attention": "attention", "avg": "avgpool"}
# Fields that change speed only, not the function or the parameters: ignored when comparing
# architectures (task attach, initial models).
RUNTIME_FIELDS = ("memory_format",)
# Fields that change no weight (the dropout rates): a model may be trained on with other values.
WEIGHT_FREE_FIELDS = ("dropout", "head_dropout")
# Fields that configure only the cnn (the rnn has no resnet blocks, filters or conv dropout).
CNN_FIELDS = ("n_blocks", "n_filters", "widen_factor", "dropout")
# The original CLI's option for each field (for messages).
OPTION_NAMES = {
    "model": "--model",
    "n_blocks": "-N/--number-of-resnet-blocks",
    "n_filters": "-nf/--number-of-filters",
    "widen_factor": "-wf/--widen-factor",
    "dropout": "-do/--dropout",
    "adapter_type": "--adapter-type",
    "classifier": "-c/--classifier",
    "share_feature_layer": "-sfl/--share-feature-layer",
    "n_mels": "-nm/--num-mels",
    "input_frames": "-w/--window (frames)",
}
AVGPOOL_CELL = 8  # the avgpool top's pool over the final map (8x8 positions, no overlap)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of an EmoNet model (the tasks are kept apart, see ``build_model``).

    ``adapter_type="none"`` is the adapter-free network used by the scratch, finetune and
    last-layer modes: shared 3x3 convs with per-task BatchNorms and no 1x1 adapters.
    For ``rnn`` (and the rnn branch of ``fusion``) ``parallel`` means per-task bottleneck
    adapters after every recurrent layer (``series`` is refused for ``rnn``: it has no
    series form). ``share_feature_layer`` needs the attention classifier (avgpool has no
    feature layer to share).

    ``avgpool`` is the original EmoNet's top: an 8x8 average pool over the cnn's final map,
    flattened, so its size depends on the input: ``input_frames`` is that fixed input length
    (the run's -w window; None until it is known, and for the other tops). ``meanpool`` is
    our global masked mean over all positions (any input length). The rnn branch pools
    by a masked mean over time with either.
    """

    model: str = "cnn"  # --model cnn|rnn|fusion
    n_blocks: int = 2  # -N/--number-of-resnet-blocks (per stage)
    n_filters: int = 32  # -nf/--number-of-filters
    widen_factor: int = 1  # -wf/--widen-factor
    dropout: tuple[float, float] = (0.0, 0.5)  # -do/--dropout: on the input of unit 1 and unit 2 of a block
    adapter_type: str = "parallel"  # --adapter-type parallel|series (none: adapter-free)
    classifier: str = "attention"  # -c/--classifier avgpool|attention (FCNAttention)|meanpool
    input_frames: int | None = None  # avgpool: the fixed input length in frames (the -w window)
    share_feature_layer: bool = False  # -sfl/--share-feature-layer: one attention for all tasks
    n_mels: int = 128  # -nm/--num-mels
    attention_lambda: float = 0.3  # lambda in e_i = lambda * u^T tanh(W x_i + b)
    head_dropout: float = 0.2  # dropout inside each task's head
    rnn_hidden: int = 512  # units per LSTM layer (and of the input projection)
    rnn_layers: int = 2
    rnn_time_pool: int = 8  # average non-overlapping frames before the rnn (1: off)
    rnn_bidirectional: bool = False
    rnn_adapter_reduction: int = 4  # bottleneck adapters: dim -> dim / reduction -> dim
    memory_format: str = "channels_last"  # cnn layout: channels_last|contiguous (speed only; bench/README.md)

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        for name in ("model", "adapter_type", "classifier", "memory_format"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise ConfigError(f"model config {name!r} must be a string, got {value!r}")
        classifier = self.classifier.strip()
        classifier = CLASSIFIER_ALIASES.get(classifier.lower(), classifier.lower())
        set_("classifier", classifier)
        _choice("model", self.model, MODEL_TYPES)
        _choice("adapter_type", self.adapter_type, ADAPTER_TYPES)
        _choice("classifier", self.classifier, CLASSIFIERS)
        _choice("memory_format", self.memory_format, MEMORY_FORMATS)
        for name in (
            "n_blocks",
            "n_filters",
            "widen_factor",
            "n_mels",
            "rnn_hidden",
            "rnn_layers",
            "rnn_time_pool",
            "rnn_adapter_reduction",
        ):
            _positive_int(name, getattr(self, name))
        for name in ("share_feature_layer", "rnn_bidirectional"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"model config {name!r} must be true or false, got {getattr(self, name)!r}")
        set_("dropout", _dropout_pair(self.dropout))
        set_("head_dropout", _probability("head_dropout", self.head_dropout))
        lam = self.attention_lambda
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not lam > 0:
            raise ConfigError(f"model config 'attention_lambda' must be a number > 0, got {lam!r}")
        set_("attention_lambda", float(lam))
        if self.input_frames is not None:
            _positive_int("input_frames", self.input_frames)
            if self.classifier != "avgpool":
                raise ConfigError(
                    f"model config 'input_frames' fixes the input of the avgpool top; classifier {self.classifier} "
                    "takes any length: leave it out"
                )
        if self.share_feature_layer and self.classifier != "attention":
            raise ConfigError(
                "share_feature_layer (-sfl) shares the attention layer; classifier avgpool has none: "
                "drop -sfl or use -c attention"
            )
        if self.model == "rnn" and self.adapter_type == "series":
            raise ConfigError(
                "adapter_type series is a conv adapter; model rnn has bottleneck adapters: "
                "use --adapter-type parallel (bottleneck) or none"
            )

    @property
    def has_adapters(self) -> bool:
        return self.adapter_type != "none"

    @property
    def uses_cnn(self) -> bool:
        return self.model in ("cnn", "fusion")

    @property
    def uses_rnn(self) -> bool:
        return self.model in ("rnn", "fusion")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (lists, not tuples) that ``from_dict`` reads back."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["dropout"] = list(self.dropout)
        return out

    def architecture_dict(self) -> dict[str, Any]:
        """``to_dict`` without the runtime-only fields: equal dicts mean interchangeable weights."""
        return {k: v for k, v in self.to_dict().items() if k not in RUNTIME_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, complete: bool = False) -> ModelConfig:
        """Build from a dict. Missing keys take the defaults, unless ``complete`` (checkpoint
        metadata): then every architecture key must be present (ConfigError otherwise)."""
        if not isinstance(data, dict):
            raise ConfigError(f"model config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise ConfigError(f"unknown model config key(s): {', '.join(unknown)}")
        missing = sorted(k for k in known - set(data) if k not in RUNTIME_FIELDS)
        if complete and missing:
            raise ConfigError(f"model config lacks key(s): {', '.join(missing)}")
        kwargs = dict(data)
        if isinstance(kwargs.get("dropout"), list):
            kwargs["dropout"] = tuple(kwargs["dropout"])
        return cls(**kwargs)

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"model config {name!r} must be one of {', '.join(allowed)}; got {value!r}")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"model config {name!r} must be an integer >= 1, got {value!r}")


def _probability(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ConfigError(f"model config {name!r} must be a probability in [0, 1), got {value!r}")
    return float(value)


def _dropout_pair(value: Any) -> tuple[float, float]:
    """One float (both positions) or two floats (after the first and the second conv unit)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ConfigError(f"--dropout/-do must be one rate or two (units 1 and 2 of a block), got {value!r}")
    return (_probability("dropout", value[0]), _probability("dropout", value[1]))


def check_options_for_model(config: ModelConfig, given: Collection[str]) -> None:
    """Refuse options ``given`` by the user that ``config.model`` would ignore: the cnn's
    -N/-nf/-wf/-do with ``model rnn``."""
    ignored = [OPTION_NAMES[k] for k in CNN_FIELDS if k in given]
    if config.model == "rnn" and ignored:
        raise ConfigError(
            f"{', '.join(ignored)}: option(s) of the cnn, which --model rnn does not have; "
            "drop them or use --model fusion"
        )
