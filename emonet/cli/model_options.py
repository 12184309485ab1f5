"""Model options of the original EmoNet CLI, shared by the commands that build models."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from emonet.cli.argv import given_options
from emonet.errors import EmoNetError
from emonet.models.config import ADAPTER_TYPES, CLASSIFIERS, MODEL_TYPES, MODES, ModelConfig  # no torch

CLASSIFIER_ALIASES = {"fcnattention": "attention"}  # the original EmoNet's name for the attention top

Mode = Annotated[Literal[MODES], typer.Option("--mode", "-m", help="Training mode.")]
InitialModel = Annotated[
    Path | None,
    typer.Option("--initial-model", "-im", help="Checkpoint to start from (finetune, last-layer, adapters)."),
]
ModelType = Annotated[Literal[MODEL_TYPES], typer.Option("--model", help="Network: CNN, RNN or both fused.")]
Blocks = Annotated[int, typer.Option("--number-of-resnet-blocks", "-N", help="Blocks per ResNet stage.")]
Filters = Annotated[int, typer.Option("--number-of-filters", "-nf", help="Filters of the first stage.")]
Widen = Annotated[int, typer.Option("--widen-factor", "-wf", help="Widen factor of the Wide ResNet.")]
Dropout = Annotated[
    str,
    typer.Option(
        "--dropout",
        "-do",
        help="Dropout on the input of each block's first and second conv unit (only the adapter's input when "
        "there are adapters): one value for both, or two as 'a,b'.",
    ),
]
Classifier = Annotated[
    Literal[(*CLASSIFIERS, "FCNAttention")],
    typer.Option(
        "--classifier",
        "-c",
        case_sensitive=False,
        metavar="avgpool|attention|FCNAttention|meanpool",
        help="Classifier top: attention (FCNAttention, the original EmoNet's name), avgpool (the original's "
        "8x8 pool over the final map, flattened: needs -w) or meanpool (a global masked mean).",
    ),
]
InputWindow = Annotated[
    float | None,
    typer.Option(
        "--window",
        "-w",
        help="Seconds of input an avgpool model takes (the -w it will be trained with); -c avgpool needs it.",
    ),
]
ShareFeatureLayer = Annotated[
    bool,
    typer.Option("--share-feature-layer", "-sfl", help="One attention layer shared by all tasks (needs -c attention)."),
]
AdapterType = Annotated[
    Literal[ADAPTER_TYPES], typer.Option("--adapter-type", help="Residual adapters: parallel, series or none.")
]


# A model option's parameter name (in init-model and train) -> its ModelConfig field.
CONFIG_FIELDS = {
    "model": "model",
    "blocks": "n_blocks",
    "filters": "n_filters",
    "widen": "widen_factor",
    "dropout": "dropout",
    "classifier": "classifier",
    "share_feature_layer": "share_feature_layer",
    "adapter_type": "adapter_type",
}


def with_window(config: ModelConfig, feature_config: Mapping[str, Any], seconds: float | None) -> ModelConfig:
    """``config`` with the fixed input length of ``seconds`` (avgpool only) at the features' rate."""
    if seconds is None:
        return config
    if config.classifier != "avgpool" or not config.uses_cnn:
        raise EmoNetError(
            f"-w/--window sizes the input of -c avgpool; -c {config.classifier} takes any length: drop -w"
        )
    if not 0 < seconds <= 86400:
        raise EmoNetError(f"-w/--window must be a number of seconds > 0 and at most 86400, got {seconds:g}")
    frames = 1 + int(round(seconds * int(feature_config["sample_rate"]))) // int(feature_config["hop_length"])
    return config.replace(input_frames=frames)


def given_fields(ctx: typer.Context) -> set[str]:
    """The ModelConfig fields whose options were given on the command line (not defaults)."""
    return {CONFIG_FIELDS[name] for name in given_options(ctx) if name in CONFIG_FIELDS}


def parse_dropout(text: str) -> float | tuple[float, float]:
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        raise EmoNetError(f"--dropout {text!r}: give one number or two as 'a,b' (e.g. 0,0.5)") from None
    if len(parts) not in (1, 2):
        raise EmoNetError(f"--dropout {text!r}: give one number or two as 'a,b' (e.g. 0,0.5)")
    return parts[0] if len(parts) == 1 else (parts[0], parts[1])


def model_config(
    model: str,
    blocks: int,
    filters: int,
    widen: int,
    dropout: str,
    classifier: str,
    share: bool,
    adapter_type: str,
) -> ModelConfig:
    """The ModelConfig of every model option's value."""
    return model_config_from(
        {
            "model": model,
            "blocks": blocks,
            "filters": filters,
            "widen": widen,
            "dropout": dropout,
            "classifier": classifier,
            "share_feature_layer": share,
            "adapter_type": adapter_type,
        }
    )


def model_config_from(options: Mapping[str, Any]) -> ModelConfig:
    """The ModelConfig of some model options (parameter name, as in CONFIG_FIELDS -> value as
    click parses it); the fields of the options left out keep ModelConfig's defaults."""
    fields = {CONFIG_FIELDS[name]: value for name, value in options.items()}
    if isinstance(fields.get("dropout"), str):  # the option's text; a number or pair is taken as it is
        fields["dropout"] = parse_dropout(fields["dropout"])
    if "classifier" in fields:
        fields["classifier"] = CLASSIFIER_ALIASES.get(fields["classifier"].lower(), fields["classifier"])
    try:
        return ModelConfig(**fields)
    except ValueError as exc:
        raise EmoNetError(str(exc)) from None


IdentityAdapters = Annotated[
    bool,
    typer.Option(
        "--identity-adapters", help="New adapters start as zero kernels (identity), not the original's he_normal."
    ),
]
BandNorm = Annotated[
    bool,
    typer.Option(
        "--band-norm",
        help="Standardise each mel band with the task's train mean and std (the original: raw log-mels).",
    ),
]
CopyTaskParts = Annotated[
    bool,
    typer.Option(
        "--copy-task-parts",
        help="With -im: a new task starts from the initial model's first task's adapters, BNs and attention "
        "(finetune: BNs and attention), not new ones as the original's.",
    ),
]
