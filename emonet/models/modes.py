"""Training modes: which parameters train (the original EmoNet's table of modes, README "Models and
training modes") and how a model is set up for them.

| mode       | shared convs / rnn | adapters (1x1 / bottleneck) | BN (per task)      | attention | head       |
| ---------- | ------------------ | --------------------------- | ------------------ | --------- | ---------- |
| scratch    | trained            | none (adapter_type none)    | trained            | trained   | new        |
| finetune   | loaded, trained    | none (adapter_type none)    | new, trained       | new, trained | new *   |
| last-layer | loaded, frozen     | frozen if loaded            | frozen (eval mode) | frozen    | new, alone |
| adapters   | loaded, frozen     | per task, trained           | per task, trained  | trained   | new        |

(*: loaded when the initial model has the task.)
What a task new to the initial model starts from (``setup_model``), as the original: in
finetune fresh BNs and a new attention; in adapters mode new he_normal adapters (zero, identity,
1x1 kernels with ``identity_adapters``), fresh BNs and a new attention. last-layer is the
exception (the original's bug 6, fixed): its frozen adapters, BNs and attention are copies of a
source task's trained ones, not fresh and random. ``copy_task_parts`` (an improvement) makes
finetune and adapters copy them too. ``adapters`` without an initial model is multi-task
training: the shared convs train jointly with every task's parts (``apply_mode(...,
pretrained=False)``). A shared attention layer (``share_feature_layer``) counts as shared.
Parts of tasks not being trained are frozen.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from torch import nn

from emonet.errors import ConfigError, ModelError, UnknownTaskError
from emonet.models.config import MODES, ModelConfig
from emonet.models.initial import config_from_initial, finetune_model
from emonet.models.network import EmoNet, build_model
from emonet.models.task_parts import reset_to_identity


def trainable_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters with ``requires_grad``, sorted."""
    return sorted(n for n, p in model.named_parameters() if p.requires_grad)


def task_parameters(model: EmoNet, task: str, category: str | None = None) -> list[nn.Parameter]:
    """A task's own parameters, optionally of one category (adapters, bn, attention, head)."""
    if task not in model.tasks:
        raise UnknownTaskError(f"unknown task {task!r}; this model has tasks: {', '.join(model.tasks)}")
    roles = model.tensor_roles()
    return [
        p for n, p in model.named_parameters() if roles[n][0] == task and (category is None or roles[n][1] == category)
    ]


def adapter_parameters(model: EmoNet, task: str) -> list[nn.Parameter]:
    """The task's adapter kernels (1x1 convs; bottleneck Linear weights for rnn), without
    biases or norms: what 'individual weight decay' puts its L2 penalty on."""
    return [p for p in task_parameters(model, task, "adapters") if p.dim() >= 2]


def apply_mode(model: EmoNet, mode: str, tasks: Iterable[str] | None = None, *, pretrained: bool = True) -> list[str]:
    """Set ``requires_grad`` for ``mode`` when training ``tasks`` (default: all) and return
    the trainable parameter names. ``pretrained=False`` only matters for ``adapters``:
    the shared network then trains too (multi-task training from scratch)."""
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    tasks = list(model.tasks) if tasks is None else list(tasks)
    if not tasks:
        raise ConfigError("apply_mode needs at least one task to train")
    for task in tasks:
        if task not in model.tasks:
            raise UnknownTaskError(f"unknown task {task!r}; this model has tasks: {', '.join(model.tasks)}")
    if mode == "adapters" and not model.config.has_adapters:
        raise ModelError("mode 'adapters' needs a model with adapters (adapter_type parallel or series)")
    train_shared = mode in ("scratch", "finetune") or (mode == "adapters" and not pretrained)
    chosen = set(tasks)
    roles = model.tensor_roles()
    for name, param in model.named_parameters():
        task, category = roles[name]
        if task is None:
            param.requires_grad_(train_shared)
        elif task not in chosen:
            param.requires_grad_(False)
        else:
            param.requires_grad_(mode != "last-layer" or category == "head")
    model.train(model.training)  # frozen BatchNorms switch to eval mode
    model.training_record = {"mode": mode, "tasks": tasks, "pretrained": pretrained}
    names = trainable_parameter_names(model)
    assert names, f"mode {mode!r} left nothing to train"
    return names


def setup_model(
    mode: str,
    tasks: Mapping[str, Sequence[str]],
    *,
    config: ModelConfig | None = None,
    initial: EmoNet | None = None,
    source_task: str | None = None,
    given: Collection[str] | None = None,
    identity_adapters: bool = False,
    copy_task_parts: bool = False,
) -> EmoNet:
    """A model ready to train ``tasks`` in ``mode`` (``apply_mode`` already applied).

    * scratch: a new adapter-free model (``adapter_type`` forced to none); no initial model.
    * finetune: ``initial`` required; the original's adapter-free network of the trained tasks
      only (the initial model's other tasks and any adapters are dropped): its shared convs
      (rnn) loaded, each task's BNs fresh and its attention new, its head loaded when the
      initial model has the task, else new.
    * last-layer: ``initial`` required; its architecture, weights and tasks are kept; a new
      task's frozen adapters, BNs and attention are copies of ``source_task``'s (the fix of
      the original's fresh BNs and random attention).
    * adapters: without ``initial`` a new multi-task model (shared convs train); with it, the
      initial model's weights and tasks (an adapter-free one gains adapters of
      ``config.adapter_type``, default parallel); a new task gets he_normal adapters, fresh
      BNs, a new attention and a new head.

    In last-layer and adapters mode tasks the initial model has keep all their parts. The
    initial model's feature config and normalisation statistics are carried over.

    Args:
        mode: one of ``MODES``.
        tasks: task name -> ordered class labels, the tasks to train.
        config: the architecture for a new model; with ``initial``, the requested options
            (see ``given``; its adapter type also picks the adapters an adapter-free initial
            model gains in ``adapters`` mode). Default ``ModelConfig()``.
        initial: the model to start from (``load_checkpoint``), or None.
        source_task: the initial model's task whose parts new tasks copy (last-layer, or
            ``copy_task_parts``); default its first task.
        given: with ``initial``, the ``config`` fields the user set; each must match the
            initial model (ConfigError naming both values otherwise), except the dropout rates,
            which override. None (default): none; the initial model's architecture and
            dropout are kept.
        identity_adapters: new adapters start as zero kernels (the identity: a new task starts
            as the shared network) instead of the original's he_normal.
        copy_task_parts: an improvement: a new task starts from ``source_task``'s adapters
            (adapters mode), BNs and attention instead of new ones; in finetune a task the
            initial model has keeps its BNs and attention too.

    Returns:
        The model, in train mode, with ``requires_grad`` set for ``mode``.

    Raises:
        ConfigError: an unknown mode, no task, an option the mode or initial model conflicts with.
        ModelError: the initial model's weights do not fit its config; a task exists with other classes.
        UnknownTaskError: ``source_task`` is not a task of the initial model.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if not tasks:
        raise ConfigError("setup_model needs at least one task")
    if initial is None:
        model = _new_model(mode, tasks, config or ModelConfig())
        if identity_adapters:
            _reset_adapters(model, model.tasks)
        return model
    if mode == "scratch":
        raise ConfigError("mode 'scratch' takes no initial model (drop -im/--initial-model)")
    model = _from_initial(
        mode, tasks, config_from_initial(initial.config, config or initial.config, given, mode), initial, source_task,
        identity_adapters=identity_adapters, copy_task_parts=copy_task_parts,
    )  # fmt: skip
    apply_mode(model, mode, list(tasks), pretrained=True)
    return model


def _from_initial(
    mode: str,
    tasks: Mapping[str, Sequence[str]],
    config: ModelConfig,
    initial: EmoNet,
    source_task: str | None,
    *,
    identity_adapters: bool,
    copy_task_parts: bool,
) -> EmoNet:
    """``setup_model``'s model of ``config`` on ``initial`` (``apply_mode`` not yet applied)."""
    for name, classes in tasks.items():
        if name in initial.tasks and initial.tasks[name] != list(classes):
            raise ModelError(
                f"task {name!r} exists in the initial model with classes {initial.tasks[name]}, not {list(classes)}"
            )
    source = source_task or next(iter(initial.tasks), None)
    if source is not None and source not in initial.tasks:
        known = ", ".join(initial.tasks)
        raise UnknownTaskError(f"unknown source task {source!r}; the initial model has tasks: {known}")
    if mode == "finetune":
        return finetune_model(config, tasks, initial, source if copy_task_parts else None)
    model = build_model(config, initial.tasks)
    _load_from(model, initial)
    if identity_adapters and not initial.config.has_adapters:  # the adapters it gained
        _reset_adapters(model, model.tasks)
    copy = mode == "last-layer" or copy_task_parts  # last-layer: the fix of the original's bug 6
    for name, classes in tasks.items():
        if name not in model.tasks:
            model.add_task(name, classes, init_from=source if copy else None)
            if identity_adapters and not copy:
                _reset_adapters(model, [name])
    return model


def _new_model(mode: str, tasks: Mapping[str, Sequence[str]], config: ModelConfig) -> EmoNet:
    if mode in ("finetune", "last-layer"):
        raise ConfigError(f"mode {mode!r} needs an initial model (-im/--initial-model)")
    if mode == "scratch":
        config = config.replace(adapter_type="none")
    elif not config.has_adapters:
        raise ConfigError("mode 'adapters' needs adapter_type parallel or series")
    model = build_model(config, tasks)
    apply_mode(model, mode, list(tasks), pretrained=False)
    return model


def _reset_adapters(model: EmoNet, tasks: Iterable[str]) -> None:
    """Make the adapters of ``tasks`` zero kernels (identity)."""
    for _, td in model.task_dicts():
        if td.category == "adapters":
            for task in tasks:
                reset_to_identity(td[task])


def _load_from(model: EmoNet, initial: EmoNet) -> None:
    """Copy ``initial``'s weights (by name), feature config and normalisation statistics;
    only adapter parts may be missing (they stay as built)."""
    missing, unexpected = model.load_state_dict(initial.state_dict(), strict=False)
    roles = model.tensor_roles()
    bad = [k for k in missing if roles[k][1] not in ("adapters",) and ".adapter_bn." not in k]
    if unexpected or bad:
        raise ModelError(f"initial model does not match: missing {bad[:5]}, unexpected {unexpected[:5]}")
    model.feature_config = None if initial.feature_config is None else dict(initial.feature_config)
    model.norm_stats = {t: s for t, s in initial.norm_stats.items() if t in model.tasks}
