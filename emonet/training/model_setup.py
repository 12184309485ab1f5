"""Builds a model for the tasks of a feature store, in one of the four modes, and saves it
as a self-describing checkpoint (model config, tasks, label maps, feature config and the
store's normalisation statistics)."""

from __future__ import annotations

from pathlib import Path

from emonet.errors import EmoNetError
from emonet.models import ModelConfig, load_checkpoint, setup_model
from emonet.store import FeatureStore


def store_norm_stats(store: FeatureStore, tasks: list[str]) -> dict[str, dict[str, list[float]]]:
    out = {}
    for t in tasks:
        mean, std = store.normalization(t)
        out[t] = {"mean": mean.tolist(), "std": std.tolist()}
    return out


def init_model(
    store: FeatureStore,
    tasks: list[str] | None,
    mode: str,
    config: ModelConfig,
    initial_model: Path | None = None,
):
    """(model, keyword arguments for ``save_checkpoint``) for ``tasks`` of ``store``
    (default: all)."""
    tasks = list(tasks or store.tasks)
    missing = [t for t in tasks if t not in store.tasks]
    if missing:
        raise EmoNetError(
            f"{store.path}: task(s) {', '.join(missing)} not in the store; it has: {', '.join(store.tasks)}"
        )
    n_mels = int(store.feature_config["n_mels"])
    config = config.replace(n_mels=n_mels)
    initial = None
    if initial_model is not None:
        try:
            initial, meta = load_checkpoint(initial_model)
        except (ValueError, OSError) as exc:
            raise EmoNetError(str(exc).splitlines()[0]) from None
        fc = meta.get("feature_config") or {}
        diff = [
            k
            for k in ("sample_rate", "n_fft", "hop_length", "n_mels", "f_min", "f_max")
            if k in fc and fc[k] != store.feature_config[k]
        ]
        if diff:
            raise EmoNetError(
                f"{initial_model}: was trained on other features than {store.path} ({', '.join(f'{k} {fc[k]} vs {store.feature_config[k]}' for k in diff)}); extract the store with the model's feature config"
            )
    try:
        model = setup_model(mode, {t: store.classes(t) for t in tasks}, config=config, initial=initial)
    except ValueError as exc:
        raise EmoNetError(str(exc)) from None
    meta = {
        "feature_config": dict(store.feature_config),
        "norm_stats": store_norm_stats(store, [t for t in model.tasks if t in store.tasks]),
        "extra": {
            "mode": mode,
            "store": str(store.path),
            "initial_model": str(initial_model) if initial_model else None,
        },
    }
    return model, meta
