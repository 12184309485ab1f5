"""Whether a model and a store (or a task file) were made for the same log-mel features."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emonet.data.features import FeatureConfig
from emonet.errors import ModelError


def feature_fingerprint(feature_config: Mapping[str, Any], where: str) -> str:
    """The ``FeatureConfig`` fingerprint of a feature config dict (every field counts).

    Raises ModelError (naming ``where``) when the dict is not a valid feature config.
    """

    try:
        return FeatureConfig.from_dict(dict(feature_config)).fingerprint()
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{where}: invalid feature config ({exc})") from None


def check_same_features(
    model_features: Mapping[str, Any] | None, other: Mapping[str, Any], model_name: str, other_name: str
) -> None:
    """Refuse (ModelError) a model whose feature config is missing or differs from ``other``'s.

    The message names the fields that differ (all fields are compared, via the fingerprint).
    """
    if model_features is None:
        raise ModelError(
            f"{model_name}: has no feature config, so nothing says it fits the features of {other_name}; "
            "save the model with feature_config=... (emonet init-model --store does)"
        )
    if feature_fingerprint(model_features, model_name) == feature_fingerprint(other, other_name):
        return
    keys = sorted(set(model_features) | set(other))
    diff = [f"{k} {model_features.get(k)!r} vs {other.get(k)!r}" for k in keys if model_features.get(k) != other.get(k)]
    raise ModelError(
        f"{model_name}: was made for other features than {other_name} ({', '.join(diff)}); "
        "extract the store with the model's feature config"
    )
