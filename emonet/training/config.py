"""TrainConfig: every option of ``emonet train`` as one typed, validated, YAML-able dataclass."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emonet.errors import ConfigError
from emonet.models import MODES, ModelConfig
from emonet.training.losses import LOSSES, check_loss_options
from emonet.training.optim import OPTIMIZERS
from emonet.training.task_schedule import SCHEDULES
from emonet.utils.devices import check_device_name, check_precision

MAX_SEED = 2**64 - 1  # torch.manual_seed's limit
MAX_WINDOW = 86400.0  # seconds
SINGLE_TASK_EPOCHS = 1000  # the original's -e default for one task
MULTI_TASK_EPOCHS, MULTI_TASK_STEPS = 50, 20  # the original's -e and -spe defaults for several tasks
FORMER_MULTI_TASK = {"task_schedule": "round-robin", "shared_optimizer": True, "select_best": True}


@dataclass
class TrainConfig:
    """A training run. Defaults are the original EmoNet's (README, "The original EmoNet's options").

    A single task (and a multi-task run with ``select_best``) early-stops each of the three
    stages on devel and continues from the best weights; ``epochs`` caps all stages together
    and ``steps_per_epoch`` None means enough steps to see the largest task's train partition
    once (per DDP world). A multi-task run (several tasks) follows the original EmoNet: each
    stage runs exactly ``epochs`` x ``steps_per_epoch`` iterations and the final weights are
    the result. ``epochs`` and ``steps_per_epoch`` None are the original's defaults for the
    run's kind (1000 epochs single-task; 50 epochs of 20 iterations multi-task), resolved here
    and so recorded in config.yaml.
    ``label_order`` maps a task to its classes in ordinal order (ordinal loss only).
    ``window`` None (the original's default) trains and scores whole utterances; with a window
    training takes random crops and devel/test score one window per clip, or whole clips with
    ``score_whole``.
    """

    stores: list[str]
    tasks: list[str]
    experiments: str  # -ebp: the runs' base folder
    mode: str | None = None  # None: scratch for one task, adapters for several or with -im
    initial_model: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    batch_size: int = 64
    epochs: int | None = None  # None: the original's default, 1000 single-task, 50 multi-task
    patience: int = 20
    min_delta: float = 0.005
    stages: int = 3
    learning_rate: float = 0.1
    optimizer: str = "sgd"
    window: float | None = (
        None  # -w seconds: random training crops, one window scored per clip (None: whole utterances)
    )
    score_whole: bool = False  # improvement: with -w, score devel/test on whole utterances (the original: one window)
    loss: str = "crossentropy"
    focal_gamma: float = 2.0
    focal_alpha: float = 0.25
    label_order: dict[str, list[str]] = field(default_factory=dict)
    balanced_weights: bool = False
    class_weighted_mean: bool = False  # improvement: a weighted batch's loss / sum of weights, not / batch size
    individual_weight_decay: bool = False
    shared_l2: float = 1e-6  # the original's L2 on the shared 3x3 kernels (and the adapter kernels without -iwd)
    identity_adapters: bool = False  # improvement: new adapters start as zero kernels, not he_normal
    band_norm: bool = False  # improvement: standardise each mel band with the task's train mean and std
    # improvement: with -im a new task copies the initial model's first task's adapters, BNs and attention
    copy_task_parts: bool = False
    # improvement: before each devel scoring, a task's BN running statistics re-estimated from
    # up to this many train batches (0: off, the original's running averages)
    recalibrate_bn: int = 0
    steps_per_epoch: int | None = None  # None: 20 multi-task (the original's), one pass single-task
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    deterministic: bool = False  # deterministic kernels only (GPU runs repeat bit for bit; slower)
    workers: int = 0
    shuffle_buffer: int = 1024
    run_name: str | None = None
    # the model options the user set: with -im each must match the initial model (None: keep its architecture)
    model_given: list[str] | None = None
    # multi-task: one batch of every task per iteration (the original's) or round-robin (one task per step)
    task_schedule: str = "every-task"
    shared_optimizer: bool = False  # multi-task: one optimiser for all tasks instead of one per task
    select_best: bool = False  # multi-task: early stopping and best weights as a single task

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            try:
                self.model = ModelConfig.from_dict(self.model)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"model config: {exc}") from None
        # absolute paths: config.yaml re-runs the same from any folder
        self.stores = [str(Path(s).expanduser().absolute()) for s in self.stores]
        self.experiments = str(Path(self.experiments).expanduser().absolute())
        if self.initial_model:
            self.initial_model = str(Path(self.initial_model).expanduser().absolute())
        self.tasks = [str(t) for t in self.tasks]
        if self.mode is None:
            self.mode = "adapters" if (self.initial_model or len(self.tasks) > 1) else "scratch"
        if self.epochs is None:
            self.epochs = MULTI_TASK_EPOCHS if self.multi_task else SINGLE_TASK_EPOCHS
        if self.steps_per_epoch is None and self.multi_task:
            self.steps_per_epoch = MULTI_TASK_STEPS
        self.validate()

    @property
    def multi_task(self) -> bool:
        """Several tasks trained jointly (the original's multi-task procedure)."""
        return len(self.tasks) > 1

    @property
    def early_stopping(self) -> bool:
        """Stages that end on devel without a gain, each from the best weights, and the best
        weights scored at the end (a single task, or ``select_best``); else fixed stages and
        the final weights."""
        return not self.multi_task or self.select_best

    def validate(self) -> None:
        """Raise ConfigError (one line naming the option) for an unusable value."""
        if not self.stores:
            raise ConfigError("name at least one feature store with --store")
        if not self.tasks:
            raise ConfigError("name the task(s) to train with -t/--tasks")
        dupes = sorted({t for t in self.tasks if self.tasks.count(t) > 1})
        if dupes:
            raise ConfigError(f"-t/--tasks names {', '.join(dupes)} more than once; name each task once")
        _choice("--mode", self.mode, MODES)
        _choice("--optimizer", self.optimizer, OPTIMIZERS)
        _choice("--loss", self.loss, LOSSES)
        _choice("--task-schedule", self.task_schedule, SCHEDULES)
        self.device = check_device_name(self.device)
        check_precision(self.precision)
        for name, value, low in (
            ("--batch-size", self.batch_size, 1),
            ("--epochs", self.epochs, 1),
            ("--patience", self.patience, 1),
            ("--workers", self.workers, 0),
            ("--stages", self.stages, 1),
            ("--shuffle-buffer", self.shuffle_buffer, 1),
            ("--recalibrate-bn", self.recalibrate_bn, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.steps_per_epoch is not None and (not isinstance(self.steps_per_epoch, int) or self.steps_per_epoch < 1):
            raise ConfigError(f"--steps-per-epoch must be an integer >= 1, got {self.steps_per_epoch!r}")
        if not (_number(self.learning_rate) and self.learning_rate > 0):
            raise ConfigError(f"--learning-rate must be a finite number > 0, got {self.learning_rate!r}")
        self._check_window()
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"--seed must be an integer from 0 to {MAX_SEED} (2^64 - 1), got {self.seed!r}")
        from emonet.training.run_dir import check_run_name  # here: run_dir loads torch, the CLI reads this module

        check_run_name(self.run_name)
        check_loss_options(self.loss, self.focal_gamma, self.focal_alpha)
        unknown = sorted(set(self.label_order) - set(self.tasks))
        if unknown:
            raise ConfigError(f"--label-order names task(s) {', '.join(unknown)} that are not trained (-t)")
        if self.label_order and not LOSSES[self.loss].ranked:
            ranked = [name for name, spec in LOSSES.items() if spec.ranked]
            raise ConfigError(
                f"--label-order only applies to a loss over ranked classes ({', '.join(ranked)}); "
                f"add -l {ranked[0]} or drop it"
            )
        if self.mode in ("finetune", "last-layer") and not self.initial_model:
            raise ConfigError(f"--mode {self.mode} needs an initial model: add -im/--initial-model MODEL.safetensors")
        if self.mode == "adapters" and not self.initial_model and len(self.tasks) == 1:
            raise ConfigError(
                "--mode adapters with one task needs an initial model (-im MODEL.safetensors); without one, "
                "train several tasks (--tasks a b c, the multi-task setting) or use --mode scratch"
            )
        if self.mode == "scratch" and self.initial_model:
            raise ConfigError("--mode scratch trains a new model; drop -im/--initial-model or choose another mode")

    def _check_window(self) -> None:
        if self.window is not None and not (_number(self.window) and 0 < self.window <= MAX_WINDOW):
            raise ConfigError(
                f"--window/-w must be a number of seconds > 0 and at most {MAX_WINDOW:g}, got {self.window!r}"
            )
        if not isinstance(self.score_whole, bool):
            raise ConfigError(f"--score-whole must be true or false, got {self.score_whole!r}")
        fixed = self.model.classifier == "avgpool" and self.model.uses_cnn
        if fixed and self.window is None:
            raise ConfigError(
                "-c avgpool flattens the 8x8-pooled map of a fixed-size input: add -w SECONDS (e.g. -w 4) "
                "or use -c attention"
            )
        if self.score_whole and self.window is None:
            raise ConfigError("--score-whole only applies with -w (without it clips are scored whole); drop it")
        if self.score_whole and fixed:
            raise ConfigError("--score-whole: -c avgpool scores one fixed-size window per clip; drop --score-whole")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (YAML/JSON-safe) that :meth:`from_dict` reads back."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["model"] = self.model.to_dict()
        out["label_order"] = {k: list(v) for k, v in self.label_order.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from :meth:`to_dict`'s output (config.yaml); unknown keys are refused. A
        config.yaml without ``score_whole`` was written before it existed, when a run scored
        whole clips whatever its window and its avgpool was the global mean (now meanpool): it
        keeps doing so on --resume."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in data if k not in known)
        if unknown:
            raise ConfigError(f"unknown training config key(s): {', '.join(unknown)}")
        if "score_whole" not in data:
            data = {**data, "score_whole": data.get("window") is not None}
            model = data.get("model")
            if isinstance(model, dict) and model.get("classifier") == "avgpool":
                data["model"] = {**model, "classifier": "meanpool"}
        return cls(**data)

    @classmethod
    def from_run(cls, data: dict[str, Any]) -> TrainConfig:
        """A run's config.yaml: one written before the multi-task options existed trained with
        today's options' former behaviour (round robin, one optimiser, best weights); one written
        before ``copy_task_parts`` existed started new tasks as copies of a source task's parts
        (a finetune run of then, which kept the initial model's adapters and tasks, is refused:
        its weights no longer fit the finetune network); one written before ``band_norm``
        existed standardised every mel band."""
        if "task_schedule" not in data:
            data = {**FORMER_MULTI_TASK, **data}
        if "copy_task_parts" not in data:
            if data.get("mode") == "finetune":
                raise ConfigError(
                    "this run was started by an older emonet whose finetune kept the initial model's adapters and "
                    "other tasks; finetune now builds the original's adapter-free network of the trained tasks: "
                    "start a new run"
                )
            data = {**data, "copy_task_parts": True}
        if "band_norm" not in data:
            data = {**data, "band_norm": True}
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _number(value) -> bool:
    """A real, finite number (not a bool, NaN or an infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _choice(option: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{option} {value!r} is not one of: {', '.join(allowed)}")
