"""Task schedules: which task(s) each step trains, counted exactly at any position, and the
loader that follows them on a real store (round robin and one batch of every task per step)."""

from __future__ import annotations

import pytest
import torch

from emonet.errors import TrainingError
from emonet.training.loader import ScheduledBatches, TaskSource
from emonet.training.streams import StreamSpec
from emonet.training.task_schedule import EveryTask, RoundRobin


def _counted(schedule, task: str, step: int, residue: int, every: int) -> int:
    """steps_before by brute force: every step below ``step`` of the worker's residue class."""
    return sum(schedule.tasks_at(t).count(task) for t in range(residue, step, every))


@pytest.mark.parametrize("cls", [RoundRobin, EveryTask])
def test_steps_before_counts_each_tasks_batches_for_every_worker_split(cls):
    for n_tasks in (1, 2, 3):
        schedule = cls([f"t{k}" for k in range(n_tasks)])
        for every in (1, 2, 3, 4):
            for residue in range(every):
                for step in range(0, 30):
                    for task in schedule.tasks:
                        want = _counted(schedule, task, step, residue, every)
                        assert schedule.steps_before(task, step, residue, every) == want, (n_tasks, every, step)


def test_round_robin_trains_each_task_in_turn_and_its_epoch_length():
    rr = RoundRobin(["a", "b", "c"])
    assert [rr.tasks_at(t) for t in range(7)] == [["a"], ["b"], ["c"], ["a"], ["b"], ["c"], ["a"]]
    # an epoch shows the largest train partition once: 3 tasks x ceil(18 / 5) steps
    assert rr.steps_per_epoch({"a": 18, "b": 4, "c": 10}, 5) == 3 * 4
    assert rr.steps_before("b", 1_000_001) == 333_334  # steps 1, 4, ..., 1_000_000: no list of a million steps


def test_every_task_trains_one_batch_of_each_task_per_step_in_task_order():
    every = EveryTask(["valence", "acted", "arousal"])
    assert all(every.tasks_at(t) == ["valence", "acted", "arousal"] for t in range(5))
    assert every.steps_per_epoch({"valence": 18, "acted": 4, "arousal": 10}, 5) == 4
    assert every.steps_before("acted", 10) == 10 and every.steps_before("acted", 10, 1, 4) == 3  # steps 1, 5, 9


def test_a_resumed_run_must_keep_its_schedule():
    saved = RoundRobin(["a", "b"]).state_dict()
    RoundRobin(["a", "b"]).load_state_dict(saved)
    for other in (RoundRobin(["b", "a"]), EveryTask(["a", "b"])):
        with pytest.raises(TrainingError, match="resume it with the schedule it started with") as exc:
            other.load_state_dict(saved)
        assert "\n" not in str(exc.value) and "round-robin" in str(exc.value)


def _sources(store, tasks, bs=4):
    return [TaskSource(str(store), StreamSpec(t, batch_size=bs, window=12, seed=1)) for t in tasks]


def _same(a, b) -> bool:
    return len(a) == len(b) and all(
        ka == kb and all(torch.equal(x, y) for x, y in zip(ra, rb, strict=True))
        for (ka, *ra), (kb, *rb) in zip(a, b, strict=True)
    )


def test_every_task_loader_yields_each_task_in_order_and_restarts_at_any_step(small_store):
    sources = _sources(small_store, ["arousal", "acted"])
    data = ScheduledBatches(sources, EveryTask(["arousal", "acted"]))
    ref = [next(it) for it in [iter(data)] for _ in range(6)]
    assert [[k for k, *_ in step] for step in ref] == [[0, 1]] * 6
    assert all(len(batch[3]) == 4 for step in ref for batch in step)
    later = iter(ScheduledBatches(sources, EveryTask(["arousal", "acted"]), start_step=4))
    assert all(_same(next(later), want) for want in ref[4:])
    # two loader workers: step t from worker t % 2, each continuing its own data slice
    resumed = ScheduledBatches(sources, EveryTask(["arousal", "acted"]), start_step=3)
    w0, w1 = resumed.worker_iter(0, 2), resumed.worker_iter(1, 2)
    split = [next(w0 if t % 2 == 1 else w1) for t in range(3, 7)]
    whole = ScheduledBatches(sources, EveryTask(["arousal", "acted"]))
    v0, v1 = whole.worker_iter(0, 2), whole.worker_iter(1, 2)
    ref2 = [next(v0 if t % 2 == 0 else v1) for t in range(7)]
    assert all(_same(a, b) for a, b in zip(split, ref2[3:], strict=True))


def test_a_schedule_over_other_tasks_than_the_sources_is_refused(small_store):
    with pytest.raises(ValueError, match="not the sources' tasks"):
        ScheduledBatches(_sources(small_store, ["arousal", "acted"]), RoundRobin(["arousal", "valence"]))
