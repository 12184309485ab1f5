"""Predictions from audio files with a checkpoint alone: no store needed.

The checkpoint carries its feature config and each task's normalisation statistics, so a
file becomes features exactly as ``emonet extract`` makes them (decode, downmix, resample,
log-mel, rounded to the store's float16) and is normalised as in training.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from emonet.data.audio import AudioReadError, load_mono
from emonet.data.batching import padded_batch
from emonet.data.crops import Normalizer, normalize
from emonet.data.features import FeatureConfig, LogMel
from emonet.errors import CheckpointError, InputError, UnknownTaskError
from emonet.evaluation.scoring import Scores, score
from emonet.models.checkpoint import load_model
from emonet.utils.devices import resolve_device, resolve_precision


@dataclass(frozen=True)
class Prediction:
    """One file's prediction for one task."""

    file: str
    task: str
    label: str
    probabilities: dict[str, float]  # class -> probability, in the task's class order


@dataclass
class PredictReport:
    """What a prediction run did: its predictions, the files it skipped and its timing."""

    predictions: list[Prediction] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"file", "reason"}
    files: int = 0
    audio_seconds: float = 0.0
    feature_seconds: float = 0.0  # decoding and log-mel
    network_seconds: float = 0.0
    precision: str = "fp32"  # the precision that ran (``auto`` resolved)

    @property
    def elapsed(self) -> float:
        return self.feature_seconds + self.network_seconds


class Predictor:
    """A loaded checkpoint ready to predict from audio: each file whole, or with an avgpool
    model (a fixed input length) on one window, as its run scored devel and test.

    Args:
        checkpoint: an EmoNet model checkpoint (``.safetensors``).
        device: where the network runs (``--device``: auto, cpu, cuda or cuda:N).
        batch_size: files per forward pass; files are batched with others of similar length.
        precision: fp32, bf16 or fp16 autocast of the network (``--precision``, as in training), or
            auto (bf16 where the device computes it natively, else fp32); ``precision`` is then what runs.
    """

    def __init__(self, checkpoint: str | Path, device: str = "cpu", batch_size: int = 16, precision: str = "fp32"):
        path = Path(checkpoint)
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)  # auto resolved: what runs
        self.model, meta = load_model(path, self.device)
        if not meta.get("feature_config"):
            raise CheckpointError(f"--model {path}: has no feature config, so audio cannot be turned into its features")
        self.features = FeatureConfig.from_dict(meta["feature_config"])
        # the trainer's own normalisation, so features match training bit for bit
        self.norm = {task: Normalizer(s["mean"], s["std"]) for task, s in (meta.get("norm_stats") or {}).items()}
        self.batch_size = batch_size
        self.window = self.model.config.input_frames  # avgpool: one window per file (else whole files)
        self._logmel = LogMel(self.features)
        self.path = path

    @property
    def tasks(self) -> list[str]:
        return list(self.model.tasks)

    def check_tasks(self, tasks: Sequence[str] | None) -> list[str]:
        """The tasks to predict (default: all); an unknown one names the model's tasks."""
        tasks = list(tasks) if tasks else self.tasks
        for task in tasks:
            if task not in self.model.tasks:
                raise UnknownTaskError(f"task {task!r} is not in {self.path}; it has: {', '.join(self.tasks)}")
            if task not in self.norm:
                raise CheckpointError(f"{self.path}: task {task!r} has no normalisation statistics")
        return tasks

    def logmel(self, path: Path) -> np.ndarray:
        """float32 [frames, mels] of one file, rounded to the storage dtype as in a store."""
        wav, _converted = load_mono(path, self.features.sample_rate)
        if not torch.isfinite(wav).all():
            raise AudioReadError("non-finite samples (NaN or inf) in the audio")
        feats = self._logmel(wav).astype(np.float32)
        if not np.isfinite(feats).all():  # float audio far beyond [-1, 1] overflows the power spectrum
            raise AudioReadError("samples too large: the spectrum overflows (float audio far outside -1..1)")
        return feats

    def _forward(self, feats: list[np.ndarray], tasks: list[str]) -> dict[str, Scores]:
        """Each task's scores of one batch of files (padded as a store's utterances are)."""
        out = {}
        for task in tasks:
            x, lengths = padded_batch([normalize(f, self.norm[task]) for f in feats], self.window)
            batch = (np.arange(len(feats)), x, lengths)
            out[task] = score(self.model, [batch], task, self.device, self.precision, n=len(feats))
            if not out[task].finite:  # a NaN's argmax is a label that means nothing
                raise CheckpointError(
                    f"{self.path}: the network gives non-finite outputs for task {task!r} (broken weights?); "
                    "retrain or pass another --model"
                )
        return out

    def _batches(self, files: list[Path], report: PredictReport, skip_bad: bool) -> Iterator[list]:
        """Lists of (file, features) of similar length, decoded a chunk at a time."""
        chunk = max(self.batch_size * 8, 64)
        for start in range(0, len(files), chunk):
            t0 = time.perf_counter()
            ready = []
            for path in files[start : start + chunk]:
                try:
                    ready.append((path, self.logmel(path)))
                except AudioReadError as exc:
                    if not skip_bad:
                        fix = "" if "fix or remove" in str(exc) else "; fix or remove the file"
                        raise InputError(f"{path}: {exc}{fix} (or pass --skip-bad)") from None
                    report.skipped.append({"file": str(path), "reason": str(exc)})
            report.feature_seconds += time.perf_counter() - t0
            ready.sort(key=lambda item: len(item[1]))
            for i in range(0, len(ready), self.batch_size):
                yield ready[i : i + self.batch_size]

    def predict(
        self,
        files: Sequence[str | Path],
        tasks: Sequence[str] | None = None,
        skip_bad: bool = False,
        report: PredictReport | None = None,
    ) -> PredictReport:
        """Predictions of ``tasks`` (default: all the model's) for ``files``.

        Args:
            report: filled as the work goes on; after an exception (Ctrl-C included) it holds
                the predictions of the files finished so far, in the order of ``files``.

        Returns:
            A PredictReport whose predictions are in the order of ``files``, task by task.

        Raises:
            InputError: an unreadable file (without ``skip_bad``).
            UnknownTaskError: a task the model does not have.
        """
        tasks = self.check_tasks(tasks)
        files = [Path(f) for f in files]
        report = report if report is not None else PredictReport()
        report.precision = self.precision
        by_file: dict[Path, list[Prediction]] = {}
        hop = self.features.hop_length / self.features.sample_rate
        try:
            for batch in self._batches(files, report, skip_bad):
                t0 = time.perf_counter()
                probs = self._forward([f for _, f in batch], tasks)
                report.network_seconds += time.perf_counter() - t0
                done = {
                    path: [self._prediction(path, task, probs[task], i) for task in tasks]
                    for i, (path, _) in enumerate(batch)
                }
                by_file.update(done)  # a whole batch or nothing, so an interruption leaves no file half done
                report.files += len(batch)
                report.audio_seconds += sum(len(feat) for _, feat in batch) * hop
        finally:
            report.predictions = [p for f in files if f in by_file for p in by_file[f]]
        return report

    def _prediction(self, path: Path, task: str, scores: Scores, i: int) -> Prediction:
        classes = self.model.tasks[task]
        values = scores.probabilities[i].tolist()
        return Prediction(str(path), task, classes[int(scores.predictions[i])], dict(zip(classes, values, strict=True)))
