"""The architecture of a model built on an initial model: the initial one's, never silently another."""

from __future__ import annotations

from collections.abc import Collection

from emonet.errors import ConfigError
from emonet.models.config import OPTION_NAMES, RUNTIME_FIELDS, WEIGHT_FREE_FIELDS, ModelConfig


def config_from_initial(
    initial: ModelConfig, requested: ModelConfig, given: Collection[str] | None, mode: str
) -> ModelConfig:
    """The config of a model that starts from a model of config ``initial``.

    Args:
        initial: the initial model's config.
        requested: the config the user asked for.
        given: the fields of ``requested`` the user set (None: none of them).
        mode: the training mode.

    Returns:
        ``initial`` with the requested dropout rates and memory format, and in ``adapters``
        mode from an adapter-free model the requested adapter type (default parallel).

    Raises:
        ConfigError: a given architecture field differs from the initial model's (naming both
            values), or ``adapters`` mode with adapter type none.
    """
    given = set() if given is None else set(given)
    changes: dict = {"memory_format": requested.memory_format}
    changes.update({k: getattr(requested, k) for k in WEIGHT_FREE_FIELDS if k in given})
    if mode == "adapters" and not initial.has_adapters:
        if "adapter_type" in given and not requested.has_adapters:
            raise ConfigError("mode 'adapters' needs --adapter-type parallel or series, not none")
        changes["adapter_type"] = requested.adapter_type if requested.has_adapters else "parallel"
        given.discard("adapter_type")
    conflicts = [
        f"{OPTION_NAMES.get(k, k)} {_show(getattr(requested, k))} (initial model: {_show(getattr(initial, k))})"
        for k in requested.to_dict()  # field order
        if k in given
        and k not in RUNTIME_FIELDS
        and k not in WEIGHT_FREE_FIELDS
        and getattr(requested, k) != getattr(initial, k)
    ]
    if conflicts:
        raise ConfigError(
            f"the initial model has another architecture: {'; '.join(conflicts)}; "
            "drop these options to keep the initial model's"
        )
    return initial.replace(**changes)


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)
