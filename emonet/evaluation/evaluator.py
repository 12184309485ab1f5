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
from emonet.evaluation.label_maps import class_ids, parse_label_map
from emonet.evaluation.metrics import classification_report, confusion_matrix
from emonet.evaluation.outputs import write_evaluation
from emonet.evaluation.scoring import score
from emonet.models.checkpoint import load_model
from emonet.models.feature_match import check_same_features
from emonet.utils.devices import check_precision, resolve_device, resolve_precision


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
    head: str | None = None  # cross-corpus: the model's task whose head scored ``task`` (None: its own)
    label_map: dict[str, str] | None = None  # cross-corpus: the scored labels -> the head's classes
    dropped: int = 0  # cross-corpus: items left out with --drop-unmapped

    @property
    def key(self) -> str:
        """The name of this scoring in results.json and the files: the task, or ``HEAD_on_TASK``."""
        return self.task if self.head is None else f"{self.head}_on_{self.task}"


@dataclass
class Evaluation:
    """What ``evaluate`` did: each task's scores (by :attr:`TaskEvaluation.key`), and where
    they were written (or None)."""

    checkpoint: str
    partition: str
    tasks: dict[str, TaskEvaluation]
    output: Path | None = None
    precision: str = "fp32"  # the precision that ran (``auto`` resolved): metrics' ``compute_precision``

    def results(self) -> dict:
        """task -> partition -> metrics, the shape of a run's results.json (an unlabelled
        partition, or one without items: ``{"n": items, "labelled": ...}``)."""
        out = {}
        for t, e in self.tasks.items():
            bare = {"n": len(e.files), "labelled": e.labelled}
            entry = e.metrics if e.metrics is not None else bare
            if e.head is not None:
                entry = {**entry, "head": e.head, "task": e.task, "label_map": e.label_map, "dropped": e.dropped}
            out[t] = {e.partition: entry}
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


def _head_map(model, name, store, task, head, label_map, drop_unmapped) -> np.ndarray:
    """The class map of ``task`` scored by its own head, or by ``head`` through ``label_map``."""
    if head is None:
        return _class_map(model, name, store, task)
    return class_ids(label_map, store.classes(task), list(model.tasks[head]), head, task, drop_unmapped)


def _check_head(model, name: str, head, tasks, label_map, drop_unmapped) -> dict[str, str] | None:
    """The parsed label map of a cross-corpus evaluation (None without one); refuse a head the
    model lacks, a head without the tasks it scores, and a map or --drop-unmapped without a head."""
    if head is None:
        if label_map is not None or drop_unmapped:
            raise ConfigError(f"{'--label-map' if label_map is not None else '--drop-unmapped'} needs --head HEAD: "
                              "the model's task whose head scores the other tasks")  # fmt: skip
        return None
    if head not in model.tasks:
        raise UnknownTaskError(f"--head {head!r} is not a task of {name}; it has: {', '.join(model.tasks)}")
    if not tasks:
        raise ConfigError(f"--head {head}: name the tasks whose partition it scores with --tasks TASK...")
    return parse_label_map(label_map) if label_map is not None else None


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
    head: str | None = None,
    label_map: dict[str, str] | None = None,
    drop_unmapped: bool = False,
) -> TaskEvaluation:
    """One task of ``model`` scored on ``store``'s ``partition`` (see :func:`evaluate`), each
    clip whole (``window`` None) or on one ``window``-frame window; with ``head``, by that task's
    head (and statistics), its labels mapped by ``label_map`` (:mod:`.label_maps`)."""
    by = head or task
    norm = _normalizer(model, name, by)
    mapping = _head_map(model, name, store, task, head, label_map, drop_unmapped)
    part = open_partition(store, task, partition)
    index = partition_index(part)
    batches = utterance_batches(part, index, norm, batch_size, window=window)
    scores = score(model, batches, by, device, precision, n=len(index))
    probs, pred = scores.probabilities, scores.predictions
    labels = mapping[index.label_ids]  # -1 indexes the last entry: stays -1; -2: dropped
    keep = labels != -2
    files = [f for f, k in zip(part.files, keep, strict=True) if k]
    labels, pred, probs = labels[keep], pred[keep], probs[keep]
    classes = list(model.tasks[by])
    metrics = None
    if part.labelled and (labels >= 0).any():
        metrics = classification_report(confusion_matrix(labels, pred, len(classes)), classes)
        if epoch is not None:
            metrics["epoch"] = epoch
        metrics["compute_precision"] = precision  # fp32/bf16/fp16 that ran (not the precision metric)
    cross = {"head": head, "label_map": label_map, "dropped": int((~keep).sum())} if head else {}
    return TaskEvaluation(
        task, partition, str(store.path), classes, files, labels, pred, probs, metrics, part.labelled, **cross
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
    head: str | None = None,
    label_map: str | Path | dict | None = None,
    drop_unmapped: bool = False,
    loaded: tuple | None = None,
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
        device: auto, cpu, cuda or cuda:N (:mod:`emonet.utils.devices`).
        precision: fp32, bf16 or fp16 autocast (as the run's ``--precision``), or auto (bf16 where
            native, else fp32); results.json records what ran (each task's ``compute_precision``).
        write: False: return the scores and write nothing.
        head: cross-corpus: score ``tasks`` (any tasks of the stores) with this task's head and
            normalisation statistics; each is keyed ``HEAD_on_TASK``. UAR is over the head's
            classes that occur among the mapped labels; a prediction of another class is an error.
        label_map: with ``head``: the scored labels -> the head's classes (inline
            ``LABEL=CLASS,...``, a .json/.csv file or a dict; see :mod:`.label_maps`).
        drop_unmapped: with ``head``: leave out items whose label maps to nothing (counted
            as ``dropped``) instead of refusing them.
        loaded: ``load_model(model, device)``'s ``(net, meta)``, not to read the file again.

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
    precision = resolve_precision(precision, dev)
    net, meta = loaded if loaded is not None else load_model(model, dev)
    name = str(model)
    opened = [as_store(s) for s in stores]
    if not opened:
        raise ConfigError("name at least one feature store (--store STORE)")
    for s in opened:
        check_same_features(meta.get("feature_config"), s.feature_config, name, f"store {s.path}")
    mapping = _check_head(net, name, head, tasks, label_map, drop_unmapped)
    holders = (
        model_tasks(net, name, opened, tasks) if head is None else resolve_tasks(opened, list(dict.fromkeys(tasks)))
    )
    for t, s in holders.items():  # every check before any scoring or writing
        _normalizer(net, name, head or t)
        _head_map(net, name, s, t, head, mapping, drop_unmapped)
        open_partition(s, t, partition)
    epoch, window = (meta.get("extra") or {}).get("epoch"), run_window(net, meta)
    scored = [
        evaluate_task(
            net, name, s, t, partition, batch_size, dev, precision, epoch, window, head, mapping, drop_unmapped
        )
        for t, s in holders.items()
    ]
    result = Evaluation(name, partition, {e.key: e for e in scored}, precision=precision)
    if write:
        result.output = write_evaluation(result, folder)
    return result
