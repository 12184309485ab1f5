"""The multi-task trainer behind ``emonet train`` and :func:`emonet.training.train`."""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import torch

from emonet.errors import TrainingError
from emonet.training import distributed as dd
from emonet.training import run_dir as rd
from emonet.training.config import TrainConfig
from emonet.training.data import normalizer, window_frames
from emonet.training.evaluate import autocast, evaluate_partition
from emonet.training.loader import RoundRobinBatches, TaskSource, make_loader
from emonet.training.losses import TaskLoss, balanced_class_weights, label_ranks
from emonet.training.optim import build_optimizer, individual_weight_decay, l2_penalty, parameter_groups
from emonet.training.progress import EpochSummary, Progress
from emonet.training.schedule import Schedule
from emonet.training.setup import build_run_model, check_window, norm_stats, open_stores, resolve_tasks
from emonet.training.streams import StreamSpec
from emonet.utils.allocator import keep_large_buffers


class TrainingInterrupted(TrainingError):
    """Ctrl-C: the run stopped; its finished epochs are kept (``--resume`` continues)."""

    exit_code = 130


class Trainer:
    """One run: ``Trainer(config).run_training()`` trains, validates every epoch, scores the test
    partitions once with the best weights and returns ``results`` (task -> partition ->
    metrics). ``resume`` continues the run in that folder from its last finished epoch."""

    def __init__(self, config: TrainConfig, *, resume: str | Path | None = None, progress: Progress | None = None):
        keep_large_buffers()  # no page faults on every step's activation buffers (bench/README.md)
        self.config = config
        self.device = dd.local_device(config.device)
        self.rank, self.world = dd.init(self.device)
        self.progress = progress if progress is not None and self.rank == 0 else Progress()
        if config.precision == "fp16" and self.device.type != "cuda":
            from emonet.errors import ConfigError

            raise ConfigError("--precision fp16 needs a CUDA GPU; use bf16 or fp32 on the CPU")
        self.stores = open_stores(config.stores)
        self.feature_config = dict(self.stores[0].feature_config)
        self.tasks = resolve_tasks(self.stores, config.tasks)
        self.names = list(self.tasks)
        self.window, note = check_window(config, window_frames(self.stores[0], config.window), self.tasks)
        if note:
            self.progress.note(note)
        torch.manual_seed(config.seed)
        self.model, self.initial_norms = build_run_model(config, self.tasks, self.feature_config)
        self.model.to(self.device)
        self.norms = {t: normalizer(d.store, t) for t, d in self.tasks.items()}
        self.losses = {t: self._loss(t).to(self.device) for t in self.names}
        self.penalties = self._penalties()
        per_step = config.batch_size * self.world
        self.spe = config.steps_per_epoch or len(self.names) * max(
            math.ceil(d.n_train / per_step) for d in self.tasks.values()
        )
        self.schedule = Schedule(config.learning_rate, config.patience, config.min_delta, config.stages, config.epochs)
        self.optimizer = self._optimizer()
        self.scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
        self.step, self.history, self.best_state = 0, [], None
        self.run_dir = Path(resume) if resume else None
        if self.run_dir is not None:
            if self.rank == 0:
                self._lock = rd.lock_run(self.run_dir)
            self._restore(rd.load_state(self.run_dir))
        elif self.rank == 0:
            self.run_dir = rd.create_run_dir(config.experiments, self.names, config.run_name)
        if self.rank == 0:
            if resume is None:
                self._lock = rd.lock_run(self.run_dir)
            rd.write_config(self.run_dir, config.to_dict())

    # ------------------------------------------------------------------ set-up
    def _loss(self, task: str) -> TaskLoss:
        d, cfg = self.tasks[task], self.config
        weights = balanced_class_weights(d.train_labels, len(d.classes)) if cfg.balanced_weights else None
        ranks = label_ranks(d.classes, cfg.label_order.get(task)) if cfg.loss == "ordinal" else None
        return TaskLoss(cfg.loss, len(d.classes), weights, cfg.focal_gamma, cfg.focal_alpha, ranks)

    def _penalties(self) -> dict[str, list]:
        """task -> [(params, L2 factor)]: -iwd on the task's adapter kernels, and the
        original's small L2 on the shared 3x3 kernels."""
        from emonet.models import adapter_parameters

        roles = self.model.tensor_roles()
        shared = [
            p
            for n, p in self.model.named_parameters()
            if roles[n][0] is None and p.dim() == 4 and p.shape[-1] == 3 and p.requires_grad
        ]
        out = {}
        for t, d in self.tasks.items():
            terms = [(shared, self.config.shared_l2)]
            if self.config.individual_weight_decay:
                terms.append((adapter_parameters(self.model, t), individual_weight_decay(d.n_train)))
            out[t] = [(ps, f) for ps, f in terms if f > 0 and any(p.requires_grad for p in ps)]
        return out

    def _optimizer(self) -> torch.optim.Optimizer:
        groups = parameter_groups(self.model, self.names)
        return build_optimizer(self.config.optimizer, groups, self.schedule.current_lr)

    def _restore(self, state: dict | None) -> None:
        if state is None:
            return  # killed before its first epoch ended: start over in the same folder
        self.model.load_state_dict(state["model"])
        self.schedule.load_state_dict(state["schedule"])
        self.optimizer = self._optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.history, self.best_state = state["step"], state["history"], state["best_model"]
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"])

    def _loader(self):
        cfg = self.config
        sources = [
            TaskSource(
                str(d.store.path), StreamSpec(t, cfg.batch_size, self.window, cfg.seed, True, cfg.shuffle_buffer)
            )
            for t, d in self.tasks.items()
        ]
        return make_loader(RoundRobinBatches(sources, self.rank, self.world, self.step), cfg.workers, cfg.seed)

    # ------------------------------------------------------------------- loop
    def run_training(self) -> dict:
        """Train until the schedule is done; returns task -> partition -> metrics."""
        self.progress.begin(self.run_dir, self.spe, self.schedule.epoch)
        batches = self._loader()
        self.model.train()
        try:
            while not self.schedule.done:
                t0 = time.perf_counter()
                losses = self._train_epoch(batches)
                devel = self._validate()
                self._end_epoch(losses, devel, time.perf_counter() - t0)
            results = self._finish()
        except KeyboardInterrupt:
            self.progress.end()
            raise TrainingInterrupted(
                f"stopped (Ctrl-C); finished epochs are kept. Continue with: emonet train --resume {self.run_dir}"
            ) from None
        finally:
            lock = getattr(self, "_lock", None)
            if lock is not None:
                lock.close()  # the run folder is free again
        self.progress.end()
        return results

    def _train_epoch(self, batches) -> dict[str, float]:
        n = len(self.names)
        sums = torch.zeros(n, dtype=torch.float64, device=self.device)
        counts = [0] * n
        params = [p for p in self.model.parameters() if p.requires_grad]
        wait, samples, t_start = 0.0, 0, time.perf_counter()
        for i in range(self.spe):
            t0 = time.perf_counter()
            k, x, lengths, labels = next(batches)
            wait += time.perf_counter() - t0
            samples += len(labels)
            task = self.names[k]
            x, lengths, labels = (v.to(self.device, non_blocking=True) for v in (x, lengths, labels))
            with autocast(self.device, self.config.precision):
                logits = self.model(x, lengths, task)
            loss = self.losses[task](logits, labels)
            for ps, factor in self.penalties[task]:
                loss = loss + l2_penalty(ps, factor)
            self._backward_step(loss, params)
            sums[k] += loss.detach()
            counts[k] += 1
            self.step += 1
            if (i + 1) % 10 == 0 or i + 1 == self.spe:
                value = float(sums.sum()) / max(sum(counts), 1)
                self._check_finite(value)
                self.progress.step(self.schedule.epoch + 1, i + 1, value)
        self.timing = {"data_wait_s": wait, "train_s": time.perf_counter() - t_start, "samples": samples}
        dd.all_reduce_sum(sums, self.world)
        return {t: float(sums[k]) / max(counts[k] * self.world, 1) for k, t in enumerate(self.names)}

    def _backward_step(self, loss: torch.Tensor, params: list) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            dd.average_gradients(params, self.world)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            dd.average_gradients(params, self.world)
            self.optimizer.step()

    def _check_finite(self, value: float) -> None:
        if not math.isfinite(value):
            last = f"{self.run_dir}/{rd.LAST}" if self.schedule.epoch else "none (no epoch finished)"
            raise TrainingError(
                f"the training loss became {value} in epoch {self.schedule.epoch + 1} "
                f"(lr {self.schedule.current_lr:g}); stopped. The last good checkpoint is kept: {last}. "
                "Lower -lr or check the inputs"
            )

    def _validate(self) -> dict[str, dict]:
        from emonet.evaluation.metrics import accuracy, macro_f1, uar

        dd.average_running_stats(self.model, self.world)  # one model on every rank, as rank 0 saves it
        out = {}
        for t, d in self.tasks.items():
            cm, loss = evaluate_partition(
                self.model, d.store, t, "devel", self.norms[t], self.losses[t], self.config.batch_size,
                self.device, self.config.precision, self.rank, self.world,
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
        if is_best:  # the best weights are the current ones
            self.best_state = copy.deepcopy(self.model.state_dict())
        if action == "next-stage":  # the next stage starts from the best weights, with a fresh optimiser
            self.model.load_state_dict(self.best_state)
            self.optimizer = self._optimizer()
        if self.rank == 0:
            self._write_epoch(is_best)
        summary = EpochSummary(sched.epoch, stage, lr, losses, devel, score, is_best, action, seconds)
        summary.extra.update(self.timing)
        self.progress.epoch(summary)

    def _checkpoint_meta(self, which: str) -> dict:
        extra = {
            "kind": which, "epoch": self.schedule.epoch, "best_epoch": self.schedule.best_epoch,
            "score": self.schedule.best, "mode": self.config.mode, "run": str(self.run_dir),
            "train_config": self.config.to_dict(),
        }  # fmt: skip
        stats = {**self.initial_norms, **norm_stats(self.tasks)}
        return {"feature_config": self.feature_config, "norm_stats": stats, "extra": extra}

    def _write_epoch(self, is_best: bool) -> None:
        from emonet.models import save_checkpoint
        from emonet.training.report import log_scalars

        writes = [
            (rd.BEST, lambda: save_checkpoint(self.run_dir / rd.BEST, self.model, **self._checkpoint_meta("best"))),
            (rd.LAST, lambda: save_checkpoint(self.run_dir / rd.LAST, self.model, **self._checkpoint_meta("last"))),
            (rd.STATE, lambda: rd.save_state(self.run_dir, self._state())),
            (rd.METRICS, lambda: rd.write_metrics(self.run_dir, self.history)),
        ]
        for name, write in writes[0 if is_best else 1 :]:
            try:
                write()
            except OSError as exc:
                raise TrainingError(
                    f"{self.run_dir / name}: writing failed ({exc.strerror or exc}); the previous version stays "
                    f"readable. Free space, then continue with: emonet train --resume {self.run_dir}"
                ) from None
        log_scalars(self.run_dir, self.history[-len(self.names) :])

    def _state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "best_model": self.best_state,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "step": self.step,
            "history": self.history,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state() if self.device.type == "cuda" else None,
            },
        }

    # ------------------------------------------------------------------ finish
    def _finish(self) -> dict:
        """Best weights; devel and test (once, selecting nothing) scored; reports written."""
        from emonet.evaluation.metrics import classification_report
        from emonet.training.report import write_reports

        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        results = {}
        for t, d in self.tasks.items():
            results[t] = {}
            has_test = "test" in d.store.partitions(t) and d.store.partition(t, "test").labelled
            parts = ["devel"] + (["test"] if has_test else [])
            for p in parts:
                cm, loss = evaluate_partition(
                    self.model, d.store, t, p, self.norms[t], self.losses[t], self.config.batch_size,
                    self.device, self.config.precision, self.rank, self.world,
                )  # fmt: skip
                results[t][p] = {
                    **classification_report(cm, d.classes),
                    "loss": loss,
                    "epoch": self.schedule.best_epoch,
                }
        if self.rank == 0:
            write_reports(self.run_dir, results, self.history, self.schedule.best_epoch)
        dd.barrier(self.world)
        return results
