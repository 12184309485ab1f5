"""``evaluate``: a checkpoint scored on a partition of feature stores, task by task, exactly as
the trainer scored its devel and test partitions (whole utterances, or one window per clip when
its run had -w, masked, normalised with the checkpoint's own per-task statistics)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emonet.data.batching import utterance_batches
from emonet.data.crops import Normalizer
from emonet.data.features import FeatureConfig
from emonet.data.partitions import PARTITIONS
from emonet.data.store_access import as_store, open_partition, partition_index, resolve_tasks
from emonet.errors import CheckpointError, ConfigError, ModelError, UnknownTaskError
from emonet.evaluation.metrics import classification_report, confusion_matrix
from emonet.evaluation.outputs import write_evaluation
from emonet.evaluation.scoring import score
from emonet.models.checkpoint import load_model
from emonet.models.feature_match import check_same_features
from emonet.utils.devices import check_precision, resolve_device


@dataclass
class TaskEvaluation:
    """One task scored on one partition."""

    task: str
    partition: str
    store: str  # the store's path
    classes: list[str]  # the model's classes of the task; label and prediction ids index them
    files: list[str]  # the csv's file keys, in storage order
    labels: np.ndarray  # int64 [n]: true class ids (-1: unlabelled)
    predictions: np.ndarray  # int64 [n]: predicted class ids
    probabilities: np.ndarray  # float32 [n, classes]
    metrics: dict | None  # classification_report (+ "epoch" of the weights); None when unlabelled
    labelled: bool = True  # the partition's csv had labels


@dataclass
class Evaluation:
    """What ``evaluate`` did: each task's scores, and where they were written (or None)."""

    checkpoint: str
    partition: str
    tasks: dict[str, TaskEvaluation]
    output: Path | None = None

    def results(self) -> dict:
        """task -> partition -> metrics, the shape of a run's results.json (an unlabelled
        partition, or one without items: ``{"n": items, "labelled": ...}``)."""
        out = {}
        for t, e in self.tasks.items():
            bare = {"n": len(e.files), "labelled": e.labelled}
            out[t] = {e.partition: e.metrics if e.metrics is not None else bare}
        return out


def _check_options(partition: str, batch_size: int, precision: str) -> None:
    if partition not in PARTITIONS:
        raise ConfigError(f"--partition {partition!r}: use one of {', '.join(PARTITIONS)}")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    check_precision(precision)


def model_tasks(model, name: str, stores: list, tasks: list[str] | None) -> dict[str, object]:
    """task -> the one store holding it: the named tasks (each must be the model's), or every
    task of the model that a store holds (see :func:`emonet.data.store_access.resolve_tasks`)."""
    for t in tasks or []:
        if t not in model.tasks:
            raise UnknownTaskError(f"task {t!r} is not in {name}; it has: {', '.join(model.tasks)}")
    wanted = list(dict.fromkeys(tasks)) if tasks else [t for t in model.tasks if any(t in s.tasks for s in stores)]
    if not wanted:
        have = "; ".join(f"{s.path}: {', '.join(s.tasks) or 'no tasks'}" for s in stores)
        raise UnknownTaskError(
            f"none of the tasks of {name} ({', '.join(model.tasks)}) is in the stores ({have}); "
            "give a store that holds one"
        )
    return resolve_tasks(stores, wanted)


def _class_map(model, name: str, store, task: str) -> np.ndarray:
    """Store label id -> the model's class id (by name); refuse classes the model lacks."""
    ours, theirs = list(model.tasks[task]), store.classes(task)
    missing = [c for c in theirs if c not in ours]
    if missing:
        raise ModelError(
            f"task {task!r} in {store.path} has classes {', '.join(missing)} that {name} does not know "
            f"(its classes: {', '.join(ours)}); evaluate with a store extracted with the model's labels"
        )
    return np.asarray([ours.index(c) for c in theirs] + [-1], np.int64)  # the last entry maps -1 to -1


def _normalizer(model, name: str, task: str) -> Normalizer:
    stats = (model.norm_stats or {}).get(task)
    if not stats:
        raise CheckpointError(f"{name}: task {task!r} has no normalisation statistics; re-save it with them")
    return Normalizer(np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32))


def run_window(model, meta: dict) -> int | None:
    """The window (frames) the checkpoint's run scored devel and test on, from its metadata:
    one window per clip with -w, None (whole utterances) without -w, with --score-whole, or for
    a checkpoint of no run (or of a run from before one-window scoring); an avgpool model's
    fixed input length whatever the run."""
    fixed = model.config.input_frames if model.config.classifier == "avgpool" else None
    run = (meta.get("extra") or {}).get("train_config") or {}
    if run.get("window") is None or run.get("score_whole", True) or not meta.get("feature_config"):
        return fixed
    return FeatureConfig.from_dict(meta["feature_config"]).seconds_to_frames(float(run["window"]))


def evaluate_task(
    model,
    name: str,
    store,
    task: str,
    partition: str,
    batch_size: int,
    device,
    precision: str,
    epoch=None,
    window: int | None = None,
) -> TaskEvaluation:
    """One task of ``model`` scored on ``store``'s ``partition`` (see :func:`evaluate`), each
    clip whole (``window`` None) or on one ``window``-frame window."""
    norm = _normalizer(model, name, task)
    mapping = _class_map(model, name, store, task)
    part = open_partition(store, task, partition)
    index = partition_index(part)
    batches = utterance_batches(part, index, norm, batch_size, window=window)
    scores = score(model, batches, task, device, precision, n=len(index))
    probs, pred = scores.probabilities, scores.predictions
    labels = mapping[index.label_ids]  # -1 indexes the last entry: stays -1
    classes = list(model.tasks[task])
    metrics = None
    if part.labelled and (labels >= 0).any():
        metrics = classification_report(confusion_matrix(labels, pred, len(classes)), classes)
        if epoch is not None:
            metrics["epoch"] = epoch
    return TaskEvaluation(
        task, partition, str(store.path), classes, list(part.files), labels, pred, probs, metrics, part.labelled
    )


def evaluate(
    model: str | Path,
    stores: list,
    tasks: list[str] | None = None,
    partition: str = "test",
    output: str | Path | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    precision: str = "fp32",
    write: bool = True,
) -> Evaluation:
    """Score a checkpoint on a partition of feature stores: every task of the model that the
    stores hold (or ``tasks``), each clip as the checkpoint's run scored it (:func:`run_window`).

    Args:
        model: the model checkpoint (``.safetensors``; a task pack is refused).
        stores: feature store paths (or opened stores); their features must be the model's.
        tasks: the tasks to score (default: every task of the model found in the stores).
        partition: train, devel or test.
        output: the folder to write results.json, predictions.csv and one confusion-matrix
            PNG per task into (default: ``evaluate-<partition>`` beside the checkpoint).
        batch_size: utterances per forward pass (the results do not depend on it).
        device: auto, cpu, cuda or cuda:N (see :mod:`emonet.utils.devices`).
        precision: fp32, bf16 or fp16 autocast (as the run's ``--precision``).
        write: False: return the scores and write nothing.

    Returns:
        An :class:`Evaluation`; ``results()`` is task -> partition -> metrics as in a run's
        results.json (an unlabelled partition has predictions but no metrics).

    Raises:
        CheckpointError: not a model checkpoint (or a task pack). ModelError: stores with other
        features than the model's. UnknownTaskError: a task the model lacks or no store holds.
        StoreError: a partition missing. ConfigError: a bad option. Nothing is written then.
    """
    _check_options(partition, batch_size, precision)
    folder = Path(output) if output is not None else Path(model).parent / f"evaluate-{partition}"
    if write and folder.exists() and not folder.is_dir():
        raise ConfigError(f"--output {folder}: is a file, not a folder; give a folder for the evaluation's files")
    dev = resolve_device(device)
    net, meta = load_model(model, dev)
    name = str(model)
    opened = [as_store(s) for s in stores]
    if not opened:
        raise ConfigError("name at least one feature store (--store STORE)")
    for s in opened:
        check_same_features(meta.get("feature_config"), s.feature_config, name, f"store {s.path}")
    holders = model_tasks(net, name, opened, tasks)
    for t, s in holders.items():  # every check before any scoring or writing
        _normalizer(net, name, t)
        _class_map(net, name, s, t)
        open_partition(s, t, partition)
    epoch, window = (meta.get("extra") or {}).get("epoch"), run_window(net, meta)
    scored = {
        t: evaluate_task(net, name, s, t, partition, batch_size, dev, precision, epoch, window)
        for t, s in holders.items()
    }
    result = Evaluation(name, partition, scored)
    if write:
        result.output = write_evaluation(result, folder)
    return result
