"""Multi-task round robin over endless per-task streams, for the main process or DataLoader
workers.

Global step t trains task ``t % T`` (one whole batch of one task at a time, each task in
turn). With N loader workers on each of W ranks, step t of rank r is drawn from data slice
``r * N + t % N`` of ``W * N`` disjoint slices: every (rank, worker) reads its own shards,
and the data of a step depends only on (seed, t, rank, N, W), never on timing. A loader
started at step s (resume) therefore continues exactly where the previous one stopped.
Stores are opened inside each worker, never before a fork (zarr's event-loop thread).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from emonet.training.streams import StreamSpec, stream


@dataclass(frozen=True)
class TaskSource:
    """Where one task's train stream comes from."""

    store: str  # store path
    spec: StreamSpec


def steps_before(start: int, residue: int, every: int, task: int, n_tasks: int) -> int:
    """How many steps t < start with t % every == residue trained task ``task``."""
    t = np.arange(residue, start, every, dtype=np.int64)
    return int(np.count_nonzero(t % n_tasks == task))


class RoundRobinBatches(IterableDataset):
    """Yields (task index, x, lengths, labels) for global steps start, start + 1, ...

    Args:
        sources: one TaskSource per task, in round-robin order.
        rank, world: this DDP rank and the number of ranks.
        start_step: the first global step to yield (a resumed run's position).
    """

    def __init__(self, sources: list[TaskSource], rank: int = 0, world: int = 1, start_step: int = 0):
        super().__init__()
        self.sources, self.rank, self.world, self.start_step = list(sources), rank, world, start_step

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        return self.worker_iter(*((info.id, info.num_workers) if info else (0, 1)))

    def worker_iter(
        self, worker: int, n_workers: int
    ) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """What loader worker ``worker`` of ``n_workers`` yields."""
        from emonet import open_store
        from emonet.data.store_access import open_partition, partition_index
        from emonet.training.data import normalizer

        first = self.start_step + worker  # this worker yields first, first + N, ...
        residue = first % n_workers
        slice_id, n_slices = self.rank * n_workers + residue, self.world * n_workers
        n_tasks = len(self.sources)
        streams = []
        for k, src in enumerate(self.sources):
            store = open_store(src.store)
            part = open_partition(store, src.spec.task, "train")
            index = partition_index(part)
            skip = steps_before(first, residue, n_workers, k, n_tasks)
            streams.append(stream(part, index, src.spec, normalizer(store, src.spec.task), slice_id, n_slices, skip))
        t = first
        while True:
            k = t % n_tasks
            yield (k, *next(streams[k]))
            t += n_workers


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # loader workers must not compete with the training threads


def make_loader(dataset: RoundRobinBatches, workers: int, seed: int = 0, prefetch: int = 4) -> Iterator:
    """An endless iterator of the dataset's batches: in this process (``workers`` 0) or
    through a DataLoader with ``workers`` processes (started with forkserver, so no zarr
    state is forked)."""
    if workers == 0:
        return iter(dataset)
    torch.multiprocessing.set_forkserver_preload(["torch", "emonet.training.loader"])
    loader = DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        prefetch_factor=prefetch,
        worker_init_fn=_worker_init,
        multiprocessing_context="forkserver",
        persistent_workers=False,
        generator=torch.Generator().manual_seed(seed),  # leaves the global RNG (dropout) alone
    )
    return iter(loader)
