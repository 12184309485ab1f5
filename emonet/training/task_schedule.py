"""Which task(s) each training step trains: one object that the data side (the loader) and
the trainer both follow, so a new way of mixing the tasks is one new class.

A *step* here is one item of the loader (the trainer's position, saved on resume). A step
trains the tasks of :meth:`TaskSchedule.tasks_at` in that order, each task's batch its own
optimiser step. Schedules are periodic (``period`` steps), which keeps
:meth:`TaskSchedule.steps_before` cheap at any position.
"""

from __future__ import annotations

import math

from emonet.errors import TrainingError


class TaskSchedule:
    """Base of the task schedules: subclasses set ``kind`` and define :meth:`tasks_at`,
    :attr:`period` and :meth:`steps_per_epoch`."""

    kind = "base"

    def __init__(self, tasks: list[str]):
        if not tasks:
            raise ValueError("a task schedule needs at least one task")
        self.tasks = list(tasks)

    @property
    def period(self) -> int:
        """The schedule repeats every ``period`` steps."""
        raise NotImplementedError

    def tasks_at(self, step: int) -> list[str]:
        """The tasks step ``step`` trains, in order (each its own optimiser step)."""
        raise NotImplementedError

    def steps_per_epoch(self, n_train: dict[str, int], per_step: int) -> int:
        """Steps in an epoch that shows the largest task's ``n_train`` items once, at
        ``per_step`` items per batch (the batch size times the ranks)."""
        raise NotImplementedError

    def steps_before(self, task: str, step: int, residue: int = 0, every: int = 1) -> int:
        """How many batches of ``task`` the steps t < ``step`` with t % every == residue
        trained (a loader worker that yields every ``every``-th step skips that many)."""
        if step <= residue:
            return 0
        cycle = math.lcm(self.period, every) // every  # the steps residue, residue + every, ... repeat after this
        n = (step - residue + every - 1) // every  # how many such steps lie below ``step``
        per = [self.tasks_at(residue + j * every).count(task) for j in range(min(cycle, n))]
        full, rest = divmod(n, cycle)
        return full * sum(per) + sum(per[:rest])

    def state_dict(self) -> dict:
        """What a resumed run checks it follows again."""
        return {"kind": self.kind, "tasks": list(self.tasks)}

    def load_state_dict(self, state: dict) -> None:
        """Refuse to resume a run with another schedule (its data position would mean other batches)."""
        if state.get("kind") != self.kind or list(state.get("tasks", [])) != self.tasks:
            raise TrainingError(
                f"the run was trained with the {state.get('kind')} task schedule over {state.get('tasks')}, "
                f"this one is {self.kind} over {self.tasks}; resume it with the schedule it started with"
            )


class RoundRobin(TaskSchedule):
    """Step t trains one batch of task ``t % T`` (each task in turn; ``--task-schedule
    round-robin``); an epoch is T times the largest task's batches."""

    kind = "round-robin"

    @property
    def period(self) -> int:
        return len(self.tasks)

    def tasks_at(self, step: int) -> list[str]:
        return [self.tasks[step % len(self.tasks)]]

    def steps_per_epoch(self, n_train: dict[str, int], per_step: int) -> int:
        return len(self.tasks) * max(math.ceil(n / per_step) for n in n_train.values())


class EveryTask(TaskSchedule):
    """The original EmoNet's iteration (the default): each step trains one batch of every
    task, in task order, each batch its own optimiser step; an epoch is the largest task's
    batches."""

    kind = "every-task"

    @property
    def period(self) -> int:
        return 1

    def tasks_at(self, step: int) -> list[str]:
        return list(self.tasks)

    def steps_per_epoch(self, n_train: dict[str, int], per_step: int) -> int:
        return max(math.ceil(n / per_step) for n in n_train.values())


SCHEDULES = {cls.kind: cls for cls in (RoundRobin, EveryTask)}
