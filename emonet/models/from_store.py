"""Model set-up from a feature store: the store's tasks, label maps, feature config and
normalisation statistics, in one of the four modes, optionally on an initial model."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emonet.data.normalization import norm_stats
from emonet.errors import ConfigError, UnknownTaskError
from emonet.models.checkpoint import load_model
from emonet.models.config import ModelConfig, check_options_for_model
from emonet.models.feature_match import check_same_features
from emonet.models.modes import setup_model
from emonet.models.network import EmoNet


@dataclass
class StoreModel:
    """What ``model_for_store`` built: the model (carrying its feature config and
    normalisation statistics), the ``extra`` metadata for ``save_checkpoint`` and notes for
    the user (options that overrode the initial model's)."""

    model: EmoNet
    extra: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def model_for_store(
    store,
    tasks: list[str] | None,
    mode: str,
    config: ModelConfig,
    initial_model: str | Path | None = None,
    given: Collection[str] | None = None,
    band_norm: bool = False,
    identity_adapters: bool = False,
    copy_task_parts: bool = False,
) -> StoreModel:
    """A model for ``tasks`` of ``store`` (default: all) set up for ``mode``.

    Args:
        store: an open ``FeatureStore``.
        tasks: the store's tasks to train (None: all of them).
        mode: scratch, finetune, last-layer or adapters.
        config: the requested architecture (``n_mels`` is taken from the store).
        initial_model: a model checkpoint to start from.
        given: the ``config`` fields the user set (None: none). With an initial model they
            must match it (the dropout rates may differ: they override, with a note); with
            ``model rnn`` the cnn's options are refused.
        band_norm: the store's tasks are standardised per mel band with their train statistics
            (``--band-norm``); False (the original's): raw log-mels, identity statistics.
        identity_adapters, copy_task_parts: the improvements of the same names, as
            ``setup_model`` takes them (both off: the original's new adapters and task parts).

    Returns:
        A ``StoreModel``. Inherited tasks keep their normalisation statistics; the store's
        tasks get identity ones, or the store's with ``band_norm``.

    Raises:
        UnknownTaskError: a task the store lacks. ConfigError, ModelError, CheckpointError:
        options that conflict, an initial model for other features or none recorded, a bad file.
    """
    tasks = list(tasks or store.tasks)
    missing = [t for t in tasks if t not in store.tasks]
    if missing:
        raise UnknownTaskError(
            f"{store.path}: task(s) {', '.join(missing)} not in the store; it has: {', '.join(store.tasks)}"
        )
    features = dict(store.feature_config)
    config = config.replace(n_mels=int(features["n_mels"]))
    given = {*(given or ()), "n_mels"}
    initial, notes = None, []
    if initial_model is None:
        check_options_for_model(config, given)
    else:
        initial, _ = load_initial_model(initial_model, features, str(store.path))
        check_options_for_model(initial.config, given)
        old, new = initial.config.dropout, config.dropout
        if old != new and "dropout" in given:
            notes.append(f"-do/--dropout {new[0]},{new[1]} replaces the initial model's {old[0]},{old[1]}")
    try:
        model = setup_model(
            mode, {t: store.classes(t) for t in tasks}, config=config, initial=initial, given=given,
            identity_adapters=identity_adapters, copy_task_parts=copy_task_parts,
        )  # fmt: skip
    except ConfigError as exc:
        where = f"{initial_model}: " if initial_model is not None else ""
        raise ConfigError(f"{where}{exc}") from None
    model.feature_config = features
    model.norm_stats.update(norm_stats({t: store for t in tasks}, band_norm))
    extra = {
        "mode": mode,
        "band_norm": band_norm,
        "identity_adapters": identity_adapters,
        "copy_task_parts": copy_task_parts,
        "store": str(store.path),
        "initial_model": str(initial_model) if initial_model else None,
    }
    return StoreModel(model, extra, notes)


def load_initial_model(path: str | Path, features, against: str) -> tuple[EmoNet, dict[str, Any]]:
    """The -im/--initial-model checkpoint and its metadata, refused (ModelError) when it was made
    for other features than ``features`` (those of ``against``, named in the message).
    ``emonet init-model`` and ``emonet train`` both load it here."""
    model, meta = load_model(Path(path), option="-im/--initial-model")
    check_same_features(meta.get("feature_config"), features, f"{path} (-im/--initial-model)", against)
    return model, meta
