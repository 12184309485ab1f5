"""Multi-task batches over endless per-task streams, in the order of a task schedule
(emonet.training.task_schedule), for the main process or DataLoader workers.

Step t yields one batch of each task of ``schedule.tasks_at(t)`` (the trainer's default: one
batch of every task, in task order; round robin: one batch of task ``t % T``). With N loader
workers on each of W ranks, step t of rank r is drawn from data slice ``r * N + t % N`` of
``W * N`` disjoint slices:
every (rank, worker) reads its own shards, and the data of a step depends only on (seed, t,
rank, N, W), never on timing. A loader started at step s (resume) therefore continues
exactly where the previous one stopped. Stores are opened inside each worker, never before
a fork (zarr's event-loop thread).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from emonet.data.normalization import task_normalizer
from emonet.data.store_access import open_partition, partition_index
from emonet.store.reader import open_store
from emonet.training.streams import StreamSpec, stream
from emonet.training.task_schedule import RoundRobin, TaskSchedule


@dataclass(frozen=True)
class TaskSource:
    """Where one task's train stream comes from."""

    store: str  # store path
    spec: StreamSpec


TaskBatch = tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]  # (task index in sources, x, lengths, labels)


class ScheduledBatches(IterableDataset):
    """Yields, for global steps start, start + 1, ..., the list of that step's batches
    ``[(task index, x, lengths, labels), ...]`` in the schedule's order.

    Args:
        sources: one TaskSource per task (the task index is the position here).
        schedule: which tasks each step trains (round robin over the sources when None).
        rank, world: this DDP rank and the number of ranks.
        start_step: the first global step to yield (a resumed run's position).
    """

    def __init__(
        self,
        sources: list[TaskSource],
        schedule: TaskSchedule | None = None,
        rank: int = 0,
        world: int = 1,
        start_step: int = 0,
    ):
        super().__init__()
        self.sources, self.rank, self.world, self.start_step = list(sources), rank, world, start_step
        names = [s.spec.task for s in self.sources]
        self.schedule = schedule if schedule is not None else RoundRobin(names)
        if sorted(self.schedule.tasks) != sorted(names):
            raise ValueError(f"the task schedule's tasks {self.schedule.tasks} are not the sources' tasks {names}")

    def __iter__(self) -> Iterator:
        info = get_worker_info()
        return self.worker_iter(*((info.id, info.num_workers) if info else (0, 1)))

    def worker_iter(self, worker: int, n_workers: int) -> Iterator[list[TaskBatch]]:
        """What loader worker ``worker`` of ``n_workers`` yields."""
        first = self.start_step + worker  # this worker yields first, first + N, ...
        residue = first % n_workers
        slice_id, n_slices = self.rank * n_workers + residue, self.world * n_workers
        streams = []
        for src in self.sources:
            store = open_store(src.store)
            part = open_partition(store, src.spec.task, "train")
            index = partition_index(part)
            skip = self.schedule.steps_before(src.spec.task, first, residue, n_workers)
            streams.append(
                stream(
                    part,
                    index,
                    src.spec,
                    task_normalizer(store, src.spec.task, src.spec.band_norm),
                    slice_id,
                    n_slices,
                    skip,
                )
            )
        position = {s.spec.task: k for k, s in enumerate(self.sources)}
        t = first
        while True:
            ks = [position[name] for name in self.schedule.tasks_at(t)]
            yield [(k, *next(streams[k])) for k in ks]
            t += n_workers


class RoundRobinBatches(ScheduledBatches):
    """The round-robin schedule over the sources, one batch per step: yields
    (task index, x, lengths, labels) for global steps start, start + 1, ..."""

    def __init__(self, sources: list[TaskSource], rank: int = 0, world: int = 1, start_step: int = 0):
        super().__init__(sources, None, rank, world, start_step)

    def worker_iter(self, worker: int, n_workers: int) -> Iterator[TaskBatch]:
        for (batch,) in super().worker_iter(worker, n_workers):
            yield batch


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # loader workers must not compete with the training threads


def _pinned(batches: Iterator) -> Iterator:
    """The batches with their tensors in page-locked memory (what the DataLoader's pin_memory
    does for worker processes, here for the in-process loader)."""
    for items in batches:
        yield [tuple(v.pin_memory() if isinstance(v, torch.Tensor) else v for v in item) for item in items]


def make_loader(
    dataset: ScheduledBatches, workers: int, seed: int = 0, prefetch: int = 4, pin_memory: bool = False
) -> Iterator:
    """An endless iterator of the dataset's batches: in this process (``workers`` 0) or
    through a DataLoader with ``workers`` processes (started with forkserver, so no zarr
    state is forked). ``pin_memory`` (for a CUDA device): batches in page-locked memory, so a
    ``to(device, non_blocking=True)`` copy does not wait for the GPU to finish the step before
    (a copy from pageable memory does: bench/README.md, "GPU check")."""
    if workers == 0:
        return _pinned(iter(dataset)) if pin_memory else iter(dataset)
    torch.multiprocessing.set_forkserver_preload(["torch", "emonet.training.loader"])
    loader = DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        prefetch_factor=prefetch,
        worker_init_fn=_worker_init,
        multiprocessing_context="forkserver",
        persistent_workers=False,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),  # leaves the global RNG (dropout) alone
    )
    return iter(loader)
