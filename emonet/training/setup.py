"""Everything a run needs before its first step: the stores that hold the tasks (one feature
config for all), each task's label map and train statistics, and the model in its mode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emonet.data.features import FeatureConfig
from emonet.data.store_access import resolve_tasks
from emonet.errors import ConfigError, ModelError, StoreError, UnknownTaskError
from emonet.models import setup_model
from emonet.models.from_store import load_initial_model
from emonet.store.reader import open_store
from emonet.training.config import TrainConfig

FEATURE_KEYS = ("sample_rate", "n_fft", "hop_length", "n_mels", "f_min", "f_max")


@dataclass
class TaskData:
    """One task of the run: where it lives and what its train partition holds."""

    name: str
    store: object  # FeatureStore
    classes: list[str]
    train_labels: np.ndarray

    @property
    def n_train(self) -> int:
        return len(self.train_labels)


def open_stores(paths: list[str]) -> list:
    """Open every store; refuse two with different feature configs (naming both)."""
    stores = [open_store(Path(p)) for p in paths]
    first = stores[0]
    for other in stores[1:]:
        if other.feature_hash != first.feature_hash:
            diff = [
                f"{k} {first.feature_config.get(k)} vs {other.feature_config.get(k)}"
                for k in FEATURE_KEYS
                if first.feature_config.get(k) != other.feature_config.get(k)
            ]
            raise StoreError(
                f"stores {first.path} and {other.path} hold different features ({', '.join(diff) or 'feature hash'}); "
                "extract them with the same feature options"
            )
    return stores


def task_data(stores: list, tasks: list[str]) -> dict[str, TaskData]:
    """Each task's :class:`TaskData`: the one store holding it (see
    :func:`emonet.data.store_access.resolve_tasks`), with train and devel partitions."""
    out = {}
    for task, store in resolve_tasks(stores, tasks).items():
        parts = store.partitions(task)
        missing = [p for p in ("train", "devel") if p not in parts]
        if missing:
            raise StoreError(
                f"task {task!r} in {store.path} has no {' and no '.join(missing)} partition (it has: "
                f"{', '.join(parts) or 'none'}); training needs train and devel: extract them with 'emonet extract'"
            )
        labels = np.asarray(store.partition(task, "train").label_ids, dtype=np.int64)
        if (labels < 0).any():
            raise StoreError(f"task {task!r} in {store.path}: its train partition has unlabelled rows; re-extract it")
        out[task] = TaskData(task, store, store.classes(task), labels)
        check_devel(out[task])
    return out


def check_devel(d: TaskData) -> None:
    """Devel UAR selects the best weights and drives the schedule: refuse a devel partition
    without labelled rows, or whose classes are all absent from the train partition (its UAR
    would be 0 every epoch and the selection meaningless)."""
    part = d.store.partition(d.name, "devel")
    ids = np.asarray(part.label_ids, dtype=np.int64)
    ids = ids[ids >= 0] if part.labelled else ids[:0]
    where = f"task {d.name!r} in {d.store.path}"
    fix = "re-extract the task with 'emonet extract ... -v DEVEL.csv --overwrite' listing usable, labelled files"
    if not len(ids):
        raise StoreError(
            f"{where}: its devel partition has no labelled utterances ({len(part)} file(s)); devel selects the best "
            f"weights, so training needs some: {fix}"
        )
    train = {d.classes[k] for k in np.unique(d.train_labels)}
    devel = {d.classes[k] for k in np.unique(ids)}
    if not train & devel:
        raise StoreError(
            f"{where}: none of the devel classes ({', '.join(sorted(devel))}) is in the train partition "
            f"({', '.join(sorted(train))}), so devel UAR would be 0 every epoch; {fix}"
        )


def build_run_model(config: TrainConfig, tasks: dict[str, TaskData], feature_config) -> tuple[object, dict]:
    """(the model for ``config.mode`` with every task of the run, ``apply_mode`` applied;
    the normalisation statistics of the initial model's other tasks, kept in checkpoints)."""
    frames = FeatureConfig.from_dict(dict(feature_config)).seconds_to_frames(config.window) if config.window else None
    fixed = frames if config.model.classifier == "avgpool" and config.model.uses_cnn else None
    model_cfg = config.model.replace(n_mels=int(feature_config["n_mels"]), input_frames=fixed)
    initial, meta = (None, {})
    if config.initial_model:
        initial, meta = load_initial_model(config.initial_model, feature_config, "the stores")
    classes = {t: d.classes for t, d in tasks.items()}
    try:
        model = setup_model(
            config.mode,
            classes,
            config=model_cfg,
            initial=initial,
            given=config.model_given,
            identity_adapters=config.identity_adapters,
            copy_task_parts=config.copy_task_parts,
        )
    except UnknownTaskError:
        raise
    except ValueError as exc:
        raise ModelError(str(exc).splitlines()[0]) from None
    check_fixed_input(model.config, frames, config)
    # the initial model's other tasks the model holds (finetune holds none)
    kept = {t: v for t, v in (meta.get("norm_stats") or {}).items() if t not in tasks and t in model.tasks}
    return model, kept


def check_fixed_input(model_cfg, frames: int | None, config: TrainConfig) -> None:
    """An avgpool model (one from -im too) takes exactly its window: refuse a run without -w,
    with another window or with --score-whole."""
    fixed, seconds = model_cfg.input_frames, config.window
    if fixed is not None and config.score_whole:
        raise ConfigError("--score-whole: the avgpool top scores one fixed-size window per clip; drop --score-whole")
    if fixed is None or fixed == frames:
        return
    if frames is None:
        raise ConfigError(f"the initial model has the avgpool top, which takes {fixed}-frame windows: add its -w")
    raise ConfigError(
        f"-w {seconds:g} s ({frames} frames): the initial model's avgpool top takes {fixed} frames; use its -w"
    )


def check_window(config: TrainConfig, window: int | None, tasks: dict[str, TaskData]) -> tuple[int | None, str | None]:
    """The training window in frames, cut to the longest train clip when every clip is
    shorter (said in the returned note) so no batch is mostly padding; None (whole utterances)
    stays None."""
    longest = max(int(np.max(d.store.partition(t, "train").lengths, initial=0)) for t, d in tasks.items())
    if longest < 1:
        raise ConfigError("the train partitions hold no frames; check the stores")
    if window is not None and window > longest:
        return longest, (
            f"note: -w {config.window} s ({window} frames) is longer than every train clip "
            f"(longest {longest} frames); training on whole clips padded to {longest} frames"
        )
    return window, None
