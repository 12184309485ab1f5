"""The multi-task trainer behind ``emonet train`` and :func:`emonet.training.train`."""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from pathlib import Path

import torch

from emonet.data.normalization import task_normalizer
from emonet.errors import ConfigError, TrainingError
from emonet.evaluation.metrics import accuracy, classification_report, macro_f1, uar
from emonet.training import distributed as dd
from emonet.training import pin
from emonet.training import run_dir as rd
from emonet.training.bn_recalibration import recalibrate
from emonet.training.callbacks import Callback, StepEnd, arrange, state_name
from emonet.training.config import TrainConfig
from emonet.training.data import score_window, window_frames
from emonet.training.evaluate import evaluate_partition
from emonet.training.loader import ScheduledBatches, TaskSource, make_loader
from emonet.training.losses import TaskLoss, balanced_class_weights, label_ranks
from emonet.training.optim import (
    l2_penalty,
)
from emonet.training.progress import EpochSummary, Progress
from emonet.training.report import write_reports
from emonet.training.schedule import Schedule
from emonet.training.setup import build_run_model, check_window, open_stores, task_data
from emonet.training.state import AttributeState, RngState, StateRegistry
from emonet.training.streams import StreamSpec
from emonet.training.task_optim import l2_penalties, task_optimizers
from emonet.training.task_schedule import SCHEDULES, RoundRobin, TaskSchedule
from emonet.utils.allocator import keep_large_buffers
from emonet.utils.devices import autocast, deterministic_algorithms, resolve_device, resolve_precision


class TrainingInterrupted(TrainingError):
    """Ctrl-C (exit 130) or SIGTERM (exit 143): the run stopped; its finished epochs are kept
    (``--resume`` continues)."""

    exit_code = 130

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


def _interrupted(exc: KeyboardInterrupt, run: Path | None) -> TrainingInterrupted:
    """The one-line stop message: SIGTERM (a ``Terminated`` with its exit code 143) or Ctrl-C."""
    code = getattr(exc, "exit_code", 130)
    how = "stopped by SIGTERM (kill or a job scheduler)" if code == 143 else "stopped (Ctrl-C)"
    return TrainingInterrupted(
        f"{how}; finished epochs are kept. Continue with: emonet train --resume {run}", exit_code=code
    )


class Trainer:
    """One run: ``Trainer(config).run_training()`` trains, validates every epoch, scores the test
    partitions once (with the best devel weights for a single task, the final weights for
    several: ``TrainConfig.early_stopping``) and returns ``results`` (task -> partition ->
    metrics). ``resume`` continues the run in that folder from its last finished epoch.

    ``callbacks`` are called around the loop (emonet.training.callbacks); ``task_schedule``
    says which task(s) each step trains (the config's ``task_schedule`` when None: one batch
    of every task per step, the original's). What a resume needs is kept in one registry
    (:meth:`register_state`)."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        resume: str | Path | None = None,
        progress: Progress | None = None,
        callbacks: list[Callback] | None = None,
        task_schedule: TaskSchedule | None = None,
    ):
        keep_large_buffers()  # no page faults on every step's activation buffers (bench/README.md)
        self.device = resolve_device(config.device)
        # auto resolved (to fp32 for training): the run's config records the precision that ran
        config = dataclasses.replace(config, precision=resolve_precision(config.precision, self.device, training=True))
        self.config = config
        self.rank, self.world = dd.init(self.device)
        self.progress = progress if progress is not None and self.rank == 0 else Progress()
        self.run_dir = Path(resume) if resume else None
        if self.run_dir is not None and self.rank == 0:
            self._lock = rd.open_run(self.run_dir)  # before any work: a second --resume is refused at once
        if config.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("--precision fp16 needs a CUDA GPU; use bf16 or fp32 on the CPU")
        self.stores = open_stores(config.stores)
        self.feature_config = dict(self.stores[0].feature_config)
        self.tasks = task_data(self.stores, config.tasks)
        self.names = list(self.tasks)
        self.pins = self._pin_data()
        self.window, note = check_window(config, window_frames(self.stores[0], config.window), self.tasks)
        if note:
            self.progress.note(note)
        self.score_window = score_window(config, self.stores[0])  # devel/test: one window per clip with -w
        torch.manual_seed(config.seed)
        self.model, self.initial_norms = build_run_model(config, self.tasks, self.feature_config)
        self.model.to(self.device)
        self.norms = {t: task_normalizer(d.store, t, config.band_norm) for t, d in self.tasks.items()}
        self.losses = {t: self._loss(t).to(self.device) for t in self.names}
        self.penalties = self._penalties()
        self.task_schedule = task_schedule if task_schedule is not None else SCHEDULES[config.task_schedule](self.names)
        if sorted(self.task_schedule.tasks) != sorted(self.names):
            raise TrainingError(
                f"the task schedule is over {self.task_schedule.tasks}: give one over the run's tasks {self.names}"
            )
        per_step = config.batch_size * self.world
        n_train = {t: d.n_train for t, d in self.tasks.items()}
        self.spe = config.steps_per_epoch or self.task_schedule.steps_per_epoch(n_train, per_step)
        self.schedule = Schedule(
            config.learning_rate, config.patience, config.min_delta, config.stages, config.epochs,
            fixed=not config.early_stopping,
        )  # fmt: skip
        self.scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
        self.step, self.history, self.best_state = 0, [], None
        self.callbacks = arrange(self.progress, list(callbacks or []))
        self.states = StateRegistry()
        self._register_states()
        self._resume_state = rd.load_state(self.run_dir) if self.run_dir is not None else None
        if self.run_dir is None and self.rank == 0:

            def first_files(run: Path) -> None:
                rd.write_config(run, config.to_dict())
                pin.write_pins(run, self.pins)

            self.run_dir, self._lock = rd.new_run(config.experiments, self.names, config.run_name, first_files)

    def _pin_data(self) -> dict:
        """The data this run reads: on --resume, the record of its start, after checking that the
        stores still hold it; for a new run (or one started before runs kept a record), now."""
        pinned = pin.read_pins(self.run_dir) if self.run_dir is not None else None
        if pinned is None:
            pinned = pin.current_pins(self.stores, {t: d.store.path for t, d in self.tasks.items()})
            if self.run_dir is not None and self.rank == 0:
                self.progress.note(f"note: {self.run_dir} has no {pin.PINS} (an older run); its data is pinned now")
                pin.write_pins(self.run_dir, pinned)
            return pinned
        pin.check_unchanged(pinned, self.stores, self.tasks, self.run_dir, self.world, self.device, resuming=True)
        return pinned

    def _check_data(self) -> None:
        """Stop if a store changed under the run (re-checked before each epoch and before scoring)."""
        pin.check_unchanged(self.pins, self.stores, self.tasks, self.run_dir, self.world, self.device)

    # ------------------------------------------------------------------ set-up
    def _loss(self, task: str) -> TaskLoss:
        d, cfg = self.tasks[task], self.config
        weights = balanced_class_weights(d.train_labels, len(d.classes)) if cfg.balanced_weights else None
        ranks = label_ranks(d.classes, cfg.label_order.get(task))  # 0..K-1 unless --label-order
        return TaskLoss(
            cfg.loss, len(d.classes), weights, cfg.focal_gamma, cfg.focal_alpha, ranks, cfg.class_weighted_mean
        )

    def _penalties(self) -> dict[str, list]:
        return l2_penalties(self.model, self.tasks, self.config)

    def _new_optimizers(self) -> None:
        """Fresh optimisers at the schedule's learning rate (a run's start and each new stage);
        ``self.optimizers`` maps each task to the one its batches step (see ``task_optimizers``)."""
        self.optimizers = {}
        for key, tasks, opt in task_optimizers(self.model, self.tasks, self.config, self.schedule.current_lr):
            self.optimizers.update(dict.fromkeys(tasks, opt))
            self.register_state(key, opt)

    # ------------------------------------------------------------ resume state
    def _register_states(self) -> None:
        """Everything a resumed run needs, in restore order."""
        self.register_state("model", self.model)
        self.register_state("schedule", self.schedule)
        self._new_optimizers()
        self.register_state("task_schedule", self.task_schedule)
        self.register_state("data", AttributeState(self, ("step",)))  # the loader's position
        self.register_state("record", AttributeState(self, ("history", "best_state")))
        self.register_state("rng", RngState(self.device))
        if self.scaler is not None:
            self.register_state("scaler", self.scaler)
        for cb in self.callbacks:
            self.register_state(state_name(cb), cb)

    def register_state(self, name: str, obj) -> None:
        """Keep ``obj`` (with ``state_dict()``/``load_state_dict()``) in the resume state under
        ``name``; a resumed run restores it before its first step."""
        self.states.register(name, obj)

    def state_dict(self) -> dict:
        """The resume state: every registered object's state (what state.pt holds)."""
        return self.states.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restore every registered object from :meth:`state_dict`'s output (or an older state.pt's)."""
        fresh = self.states.load_state_dict(state, self.run_dir)
        if "task_schedule" in fresh and len(self.names) > 1:  # an older run: it trained the round robin
            try:
                self.task_schedule.load_state_dict(RoundRobin(self.names).state_dict())
            except TrainingError as exc:
                raise TrainingError(f"--resume {self.run_dir}: {exc}") from None
        if "scaler" in fresh:
            note = f"note: {self.run_dir}/{rd.STATE} kept no fp16 loss scale (an older run); it starts anew"
            self.progress.note(note)

    def _restore(self) -> None:
        state, self._resume_state = self._resume_state, None
        if state is not None:  # None: killed before its first epoch ended, start over in the same folder
            self.load_state_dict(state)

    def _loader(self):
        cfg = self.config
        sources = [
            TaskSource(
                str(d.store.path),
                StreamSpec(t, cfg.batch_size, self.window, cfg.seed, True, cfg.shuffle_buffer, cfg.band_norm),
            )
            for t, d in self.tasks.items()
        ]
        data = ScheduledBatches(sources, self.task_schedule, self.rank, self.world, self.step)
        return make_loader(data, cfg.workers, cfg.seed, pin_memory=self.device.type == "cuda")

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    # ------------------------------------------------------------------- loop
    def run_training(self) -> dict:
        """Train until the schedule is done; returns task -> partition -> metrics."""
        try:
            with deterministic_algorithms(self.config.deterministic):
                self._restore()
                self._call("on_fit_start")
                batches = self._loader()
                self.model.train()
                while not self.schedule.done:
                    t0 = time.perf_counter()
                    self._check_data()
                    losses = self._train_epoch(batches)
                    devel = self._validate()
                    self._check_data()  # an epoch that read changed data is never recorded
                    self._end_epoch(losses, devel, time.perf_counter() - t0)
                self._check_data()
                results = self._finish()
                self._call("on_fit_end", results)
        except KeyboardInterrupt as exc:
            self.progress.end()
            raise _interrupted(exc, self.run_dir) from None
        finally:
            lock = getattr(self, "_lock", None)
            if lock is not None:
                lock.close()  # the run folder is free again
        return results

    def _train_epoch(self, batches) -> dict[str, float]:
        n = len(self.names)
        sums = torch.zeros(n, dtype=torch.float64, device=self.device)
        counts = [0] * n
        params = [p for p in self.model.parameters() if p.requires_grad]
        wait, samples, t_start = 0.0, 0, time.perf_counter()
        epoch = self.schedule.epoch + 1
        for i in range(self.spe):
            t0 = time.perf_counter()
            items = next(batches)  # this step's batches, one per task the schedule trains now
            wait += time.perf_counter() - t0
            for j, (k, x, lengths, labels) in enumerate(items):
                samples += len(labels)
                loss = self._train_batch(k, x, lengths, labels, params)
                sums[k] += loss
                counts[k] += 1
                running = None
                if j + 1 == len(items):
                    self.step += 1
                    if (i + 1) % 10 == 0 or i + 1 == self.spe:
                        running = float(sums.sum()) / max(sum(counts), 1)
                        self._check_finite(running)
                self._call("on_step_end", StepEnd(epoch, i + 1, self.step, self.names[k], loss, running))
        self.timing = {"data_wait_s": wait, "train_s": time.perf_counter() - t_start, "samples": samples}
        dd.all_reduce_sum(sums, self.world)
        return {t: float(sums[k]) / max(counts[k] * self.world, 1) for k, t in enumerate(self.names)}

    def _train_batch(self, k: int, x, lengths, labels, params: list) -> torch.Tensor:
        """One optimiser step on one batch of task ``k``; returns its (detached) loss."""
        task = self.names[k]
        x, lengths, labels = (v.to(self.device, non_blocking=True) for v in (x, lengths, labels))
        with autocast(self.device, self.config.precision):
            logits = self.model(x, lengths, task)
        loss = self.losses[task](logits, labels)
        for ps, factor in self.penalties[task]:
            loss = loss + l2_penalty(ps, factor)
        self._backward_step(loss, params, k)
        return loss.detach()

    def _backward_step(self, loss: torch.Tensor, params: list, k: int) -> None:
        """Backward and one step of task ``k``'s optimiser (every gradient cleared first: another
        task's optimiser may cover parameters this one does not)."""
        optimizer = self.optimizers[self.names[k]]
        self.model.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            dd.average_gradients(params, self.world, k, self.names, self.step)
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            loss.backward()
            dd.average_gradients(params, self.world, k, self.names, self.step)
            optimizer.step()

    def _check_finite(self, value: float) -> None:
        if not math.isfinite(value):
            last = f"{self.run_dir}/{rd.LAST}" if self.schedule.epoch else "none (no epoch finished)"
            raise TrainingError(
                f"the training loss became {value} in epoch {self.schedule.epoch + 1} "
                f"(lr {self.schedule.current_lr:g}); stopped. The last good checkpoint is kept: {last}. "
                "Lower -lr or check the inputs"
            )

    def _validate(self) -> dict[str, dict]:
        if self.config.recalibrate_bn:  # an improvement: fresh BN statistics for the weights scored
            for t, d in self.tasks.items():
                recalibrate(
                    self.model, d.store, t, self.norms[t], self.config.recalibrate_bn, self.config.batch_size,
                    self.device, self.config.precision, self.rank, self.world, self.score_window,
                )  # fmt: skip

        dd.average_running_stats(self.model, self.world)  # one model on every rank, as rank 0 saves it
        out = {}
        for t, d in self.tasks.items():
            cm, loss = evaluate_partition(
                self.model, d.store, t, "devel", self.norms[t], self.losses[t], self.config.batch_size,
                self.device, self.config.precision, self.rank, self.world, self.score_window,
            )  # fmt: skip
            out[t] = {"uar": uar(cm), "accuracy": accuracy(cm), "macro_f1": macro_f1(cm), "loss": loss}
        return out

    def _end_epoch(self, losses: dict[str, float], devel: dict[str, dict], seconds: float) -> None:
        for v in losses.values():
            self._check_finite(v)
        sched = self.schedule
        stage, lr = sched.stage, sched.current_lr
        score = sum(d["uar"] for d in devel.values()) / len(devel)
        is_best, action = sched.update(score)
        for t in self.names:
            self.history.append(
                {
                    "epoch": sched.epoch, "stage": stage, "task": t, "lr": lr, "loss": losses[t],
                    "devel_loss": devel[t]["loss"], "devel_uar": devel[t]["uar"],
                    "devel_accuracy": devel[t]["accuracy"], "devel_macro_f1": devel[t]["macro_f1"],
                }
            )  # fmt: skip
        if is_best and self.config.early_stopping:  # the best weights are the current ones (kept to reload)
            self.best_state = copy.deepcopy(self.model.state_dict())
        if action == "next-stage":  # the next stage starts from the best weights
            self.model.load_state_dict(self.best_state)
        if action in ("next-stage", "lower-lr"):  # ... with fresh optimisers
            self._new_optimizers()
        summary = EpochSummary(sched.epoch, stage, lr, losses, devel, score, is_best, action, seconds)
        summary.extra.update(self.timing)
        self._call("on_epoch_end", summary)  # the run folder's files are written here (callbacks.py)

    # ------------------------------------------------------------------ finish
    def _finish(self) -> dict:
        """The best weights (early stopping) or the final ones (multi-task, the original's);
        devel and test (once, selecting nothing) scored; reports written."""
        if self.best_state is not None and self.config.early_stopping:
            self.model.load_state_dict(self.best_state)
        scored = self.schedule.best_epoch if self.config.early_stopping else self.schedule.epoch
        results = {}
        for t, d in self.tasks.items():
            results[t] = {}
            has_test = "test" in d.store.partitions(t) and d.store.partition(t, "test").labelled
            parts = ["devel"] + (["test"] if has_test else [])
            for p in parts:
                cm, loss = evaluate_partition(
                    self.model, d.store, t, p, self.norms[t], self.losses[t], self.config.batch_size,
                    self.device, self.config.precision, self.rank, self.world, self.score_window,
                )  # fmt: skip
                results[t][p] = {
                    **classification_report(cm, d.classes),
                    "loss": loss,
                    "epoch": scored,
                }
        if self.rank == 0:
            with self._writing(rd.RESULTS):
                write_reports(self.run_dir, results, self.history, scored)
        dd.barrier(self.world)
        return results

    def _writing(self, name: str):
        """A failed write of a run file is one line (run_dir.writing)."""
        return rd.writing(self.run_dir, name)
