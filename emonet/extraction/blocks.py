"""Computing and writing whole blocks (shards), in parallel worker processes.

Each block is one unit of work: a worker decodes the utterances that overlap it, computes
their log-mels, writes the block with the backend's layout and returns the block's
per-band sums. So every shard has exactly one writer, and compression (the costliest
step after the mel) runs in the workers too, not in one main process. An utterance that
straddles two blocks is decoded by both (about one file in a few hundred).

Workers are forked (cheap: torch is already imported), as torch's DataLoader does on
Linux. They run soundfile, torch, numpy and the zarr write of their own shard (zarr
resets its IO thread in forked children). Each asks the kernel to kill it when the parent
dies, so a ``kill -9`` of ``emonet extract`` leaves no orphan writing into a shard that
the re-run rewrites. A forkserver or spawn context is avoided on purpose: it re-runs the
caller's ``__main__`` script in every worker. Torch runs one intra-op thread per worker,
and at most a few blocks per worker are in flight, so memory stays bounded."""

from __future__ import annotations

import ctypes
import itertools
import multiprocessing as mp
import os
import signal
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from emonet.data.audio import AudioReadError, probe_all
from emonet.data.features import FeatureConfig
from emonet.extraction.featurize import Featurizer
from emonet.extraction.shared import SharedFeatures, features
from emonet.store.staging import BlockJob, BlockRecord


@dataclass(frozen=True)
class BlockFailure:
    """Why a block could not be written: the utterance that failed and the reason."""

    index: int
    path: str
    reason: str
    kind: str  # "decode" | "frames" | "memory"


def _out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError | torch.OutOfMemoryError) or "can't allocate memory" in str(exc)


def run_block(job: BlockJob, features: Iterator[np.ndarray]) -> BlockRecord | BlockFailure:
    """Fills block ``job`` from the utterances' features (in item order), writes it and
    returns its record (sums and checksum), or the first failure."""
    buf = np.empty((job.hi - job.lo, job.n_mels), dtype=np.float16)
    for item in job.items:
        try:
            x = next(features)
        except AudioReadError as exc:
            return BlockFailure(item.index, item.path, str(exc), "decode")
        except (MemoryError, RuntimeError) as exc:
            if not _out_of_memory(exc):
                raise
            return BlockFailure(item.index, item.path, "out of memory while computing its features", "memory")
        if x.shape != (item.hi - item.lo, job.n_mels):
            return BlockFailure(
                item.index,
                item.path,
                f"decoded {x.shape[0]} frames but its header promised {item.hi - item.lo}",
                "frames",
            )
        a, b = max(item.lo, job.lo), min(item.hi, job.hi)
        buf[a - job.lo : b - job.lo] = x[a - item.lo : b - item.lo]
    crc = job.layout.write_block(job.stage, job.k, job.lo, buf, list(job.items))
    return BlockRecord.of(buf, crc)


_featurizer: Featurizer | None = None


def _init_worker(config: FeatureConfig) -> None:
    global _featurizer
    # A terminal's Ctrl-C reaches the whole process group: the parent stops the run (and
    # the pool), so a worker must not die mid-block with a traceback of its own. SIGTERM,
    # which the parent's Pool.terminate() sends, ends a worker at once: a handler inherited
    # from the parent that raises SystemExit would make it wait, at exit, for its zarr and
    # torch threads, and the parent hang in Pool.join().
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    torch.set_num_threads(1)
    _featurizer = Featurizer(config)
    _featurizer.logmel(torch.zeros(config.sample_rate))  # warm up kernels and FFT plans while the parent plans


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: best effort
        pass


def _work(job: BlockJob, shared: SharedFeatures | None):
    return run_block(job, features(_featurizer, job, shared))


class BlockExecutor:
    """Runs block jobs in order of submission: in ``workers`` forked processes, or here
    (one worker, or a CUDA device, where the mel runs on the GPU while threads decode)."""

    def __init__(self, config: FeatureConfig, device: str = "cpu", workers: int = 1):
        self.featurizer = Featurizer(config, device)  # checks the device
        self.config = config
        self.gpu = self.featurizer.device.type != "cpu"
        self.workers = max(1, min(workers, os.cpu_count() or 1))
        self._pool = None

    def limit(self, n_blocks: int) -> None:
        """Use no more workers than there are blocks to write (before the pool starts)."""
        if self._pool is None:
            self.workers = max(1, min(self.workers, n_blocks))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    @property
    def parallel(self) -> bool:
        return not self.gpu and self.workers > 1 and "fork" in mp.get_all_start_methods()

    def pool(self):
        if self._pool is None:
            with warnings.catch_warnings():
                # Python 3.12 warns about fork() in a multi-threaded process; the module
                # docstring says why these workers are safe.
                warnings.filterwarnings(
                    "ignore",
                    message=r".*use of fork\(\) may lead to deadlocks.*",
                    category=DeprecationWarning,
                )
                self._pool = mp.get_context("fork").Pool(
                    self.workers, initializer=_init_worker, initargs=(self.config,)
                )
        return self._pool

    def probe_many(self, paths: list) -> list:
        """Audio headers (AudioInfo, or the AudioReadError) of ``paths``, in order."""
        if not self.parallel or len(paths) < 128:
            return probe_all(paths)
        step = max(64, len(paths) // (self.workers * 8))
        chunks = [paths[i : i + step] for i in range(0, len(paths), step)]
        return [r for chunk in self.pool().map(probe_all, chunks) for r in chunk]

    def run(
        self, jobs: Iterable[BlockJob], shared: SharedFeatures | None = None
    ) -> Iterator[tuple[BlockJob, BlockRecord | BlockFailure]]:
        """(job, its record or failure) for each job, in order of submission; utterances
        in ``shared`` are decoded once (:mod:`emonet.extraction.shared`)."""

        def share(job: BlockJob) -> SharedFeatures | None:
            return shared.for_job(job) if shared is not None else None

        if not self.parallel:
            threads = max(self.workers, 1) if self.gpu else 0
            for job in jobs:
                yield job, run_block(job, features(self.featurizer, job, share(job), threads))
            return
        pool = self.pool()
        it = iter(jobs)
        window = self.workers * 2
        pending = deque((job, pool.apply_async(_work, (job, share(job)))) for job in itertools.islice(it, window))
        while pending:
            job, fut = pending.popleft()
            res = fut.get()
            nxt = next(it, None)
            if nxt is not None:
                pending.append((nxt, pool.apply_async(_work, (nxt, share(nxt)))))
            yield job, res
