"""A model built on an initial model: its architecture (the initial one's, never silently another)
and finetune's model (the original's adapter-free network of the trained tasks)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from emonet.errors import ConfigError, ModelError
from emonet.models.config import OPTION_NAMES, RUNTIME_FIELDS, WEIGHT_FREE_FIELDS, ModelConfig
from emonet.models.network import EmoNet, build_model


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
        ``initial`` with the requested dropout rates and memory format; in ``adapters`` mode
        from an adapter-free model the requested adapter type (default parallel); in
        ``finetune`` adapter type none (the original's finetune network has no adapters).

    Raises:
        ConfigError: a given architecture field differs from the initial model's (naming both
            values), ``adapters`` mode with adapter type none, or ``finetune`` with adapters.
    """
    given = set() if given is None else set(given)
    changes: dict = {"memory_format": requested.memory_format}
    changes.update({k: getattr(requested, k) for k in WEIGHT_FREE_FIELDS if k in given})
    if mode == "finetune":
        if "adapter_type" in given and requested.has_adapters:
            raise ConfigError(
                f"mode 'finetune' trains the network without adapters (as the original): drop --adapter-type "
                f"{requested.adapter_type}, or use -m adapters"
            )
        changes["adapter_type"] = "none"
        given.discard("adapter_type")
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


def finetune_model(
    config: ModelConfig, tasks: Mapping[str, Sequence[str]], initial: EmoNet, copy_from: str | None = None
) -> EmoNet:
    """The original's finetune network: a new model of ``config`` (adapter-free) for ``tasks``
    only, with ``initial``'s shared convs (rnn); each task's BNs fresh and its attention new (a
    shared ``-sfl`` attention too), its head ``initial``'s when it has the task, else new.

    ``copy_from`` (the ``copy_task_parts`` improvement): a new task's BNs and attention (a
    shared one too) are copies of that task's of ``initial``, and a task ``initial`` has keeps
    its own. The caller checked that the tasks ``initial`` has keep their classes.
    """
    model = build_model(config, tasks)
    state = initial.state_dict()
    roles = model.tensor_roles()
    shared = [k for k, (task, kind) in roles.items() if task is None and (kind != "attention" or copy_from)]
    missing = [k for k in shared if k not in state or state[k].shape != model.state_dict()[k].shape]
    if missing:
        raise ModelError(f"initial model does not match: missing {missing[:5]}")
    model.load_state_dict({k: state[k] for k in shared}, strict=False)
    parts = dict(initial.task_dicts())
    for name in tasks:
        if name in initial.tasks:
            model.heads[name].load_state_dict(initial.heads[name].state_dict())
        origin = (name if name in initial.tasks else copy_from) if copy_from else None
        for prefix, td in model.task_dicts():
            if origin is not None and td is not model.heads:
                td[name].load_state_dict(parts[prefix][origin].state_dict())
    model.feature_config = None if initial.feature_config is None else dict(initial.feature_config)
    model.norm_stats = {t: s for t, s in initial.norm_stats.items() if t in model.tasks}
    return model
