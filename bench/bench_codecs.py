"""Cold reads: store codecs against decode rate and store size (issue 20).

    python bench/bench_codecs.py [--files 1000] [--rounds 5] [--only zstd3,lz4-5]
    python bench/bench_codecs.py --decoder [--rounds 5]   # the shard decoder now vs before
    python bench/bench_codecs.py --trees SRC1,SRC2 [--only zstd3] [--band-norm] [--frame-cache]  # source trees
    python bench/bench_codecs.py --stream [--only zstd3,lz4-1,none] [--band-norm]  # the trainer's loader

One demo corpus (3-8 s clips, 128 mels) is extracted once per codec setting through the
real extraction and store writer (``emonet.store.zarr_backend.compressor`` swapped for the
setting), into ``bench/out/codecs-store-<setting>`` (kept and reused). Then, in one
process, for ``--rounds`` rounds with the settings in a rotated order each round:

- *cold*: every file of the store is dropped from the page cache
  (``posix_fadvise(POSIX_FADV_DONTNEED)``; residency checked with ``fincore``), then one
  epoch of ``emonet.training.batches`` (4 s windows, batch 64) over the three train
  partitions with the frame cache off (``EMONET_CACHE_MB=0``): the trainer's read path,
  every window decoded from the files;
- *warm*: the same epoch again, the files now in the page cache (frame cache still off);
- *read*: the cold shard files read and CRC-checked only (no decoding): the disk's part, and
  the windows per second it allows (the read rate over the store's train bytes per window);
- *decode*: the shards (bytes in memory) decoded only, MB/s of float16 out.

Prints medians over rounds as a markdown table, with the CPU and load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_train import OUT, TASKS, corpus_and_store  # noqa: E402

from emonet.utils.checksum import crc32  # noqa: E402

# label -> (cname or None for no compressor, clevel, shuffle, blocksize)
SETTINGS = {
    "zstd3": ("zstd", 3, "shuffle", 262144),
    "zstd1": ("zstd", 1, "shuffle", 262144),
    "lz4-1": ("lz4", 1, "shuffle", 262144),
    "lz4-5": ("lz4", 5, "shuffle", 262144),
    "lz4-9": ("lz4", 9, "shuffle", 262144),
    "lz4-5-bit": ("lz4", 5, "bitshuffle", 262144),
    "lz4-5-noshuf": ("lz4", 5, "noshuffle", 262144),
    "lz4hc-5": ("lz4hc", 5, "shuffle", 262144),
    "none": (None, 0, "", 0),
}


def codec_of(label: str):
    import zarr.codecs as zc

    cname, clevel, shuffle, blocksize = SETTINGS[label]
    return None if cname is None else zc.BloscCodec(cname=cname, clevel=clevel, shuffle=shuffle, blocksize=blocksize)


def make_store(label: str, corpus: Path) -> Path:
    """The corpus extracted with codec ``label`` (made once)."""
    from emonet.data.features import FeatureConfig
    from emonet.data.partitions import multi_task_sources
    from emonet.extraction.runner import ExtractOptions, run_extract
    from emonet.store import zarr_backend

    store = OUT / f"codecs-store-{label}"
    if not store.is_dir():
        codec = codec_of(label)
        old = zarr_backend.compressor
        zarr_backend.compressor = lambda setting: codec  # None: no compressor (compressors=[])
        try:
            sources = multi_task_sources(corpus / "multi-task-setup", TASKS)
            opts = ExtractOptions(store, corpus / "data", sources, FeatureConfig(n_mels=128), workers=1)
            run_extract(opts)
        finally:
            zarr_backend.compressor = old
    return store


def store_files(store: Path, train_only: bool = False) -> list[Path]:
    files = [p for p in store.rglob("*") if p.is_file()]
    return [p for p in files if "/train/" in str(p)] if train_only else files


def drop_cache(files: list[Path]) -> None:
    for p in files:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def resident_bytes(files: list[Path]) -> int:
    """Bytes of ``files`` in the page cache (fincore)."""
    out = subprocess.run(
        ["fincore", "-b", "-n", "-o", "RES", *map(str, files)], capture_output=True, text=True, check=True
    ).stdout
    return sum(int(x) for x in out.split())


def shard_files(store: Path) -> list[Path]:
    return sorted(p for p in store.glob("*/train/features/c/*/0"))


def epoch_rate(store) -> tuple[float, float, int]:
    """(windows per wall second, windows per CPU second of this process, windows) of one epoch."""
    from emonet.training import batches

    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    for task in TASKS:
        for x, _, _ in batches(store, task, batch_size=64, window=4.0, seed=0, epoch=0):
            n += len(x)
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0), n


def read_rate(files: list[Path]) -> float:
    """MB/s of reading and CRC-checking the files (as the store does), no decoding."""
    total, t0 = 0, time.perf_counter()
    for p in files:
        with open(p, "rb") as fh:
            blob = fh.read()
        crc32(blob)  # as the store checks it (emonet.utils.checksum)
        total += len(blob)
    return total / (time.perf_counter() - t0) / 1e6


def decode_rate(store_path: Path) -> float:
    """MB/s of float16 decoded from shards already in memory (the codec alone)."""
    import emonet

    store = emonet.open_store(store_path, verify=False)
    total, t = 0, 0.0
    for task in TASKS:
        part = store.partition(task, "train")
        reader = part._reader  # the backend's decoder, on bytes in memory
        for k in range(part.n_blocks):
            blob = reader.block_path(k).read_bytes()
            t0 = time.perf_counter()
            x = reader.read_block(k, blob)
            t += time.perf_counter() - t0
            total += x.nbytes
    return total / t / 1e6


def _decode_copy(blob, frames, shard_rows, rows, n_mels, a=0, z=None):
    """The shard decoder before issue 20 (each chunk decoded to new bytes, then copied)."""
    from numcodecs import Blosc

    z = frames if z is None else z
    per_shard = shard_rows // rows
    j0, j1 = a // rows, -(-z // rows)
    index = np.frombuffer(blob, dtype="<u8", count=2 * per_shard, offset=len(blob) - 4 - 16 * per_shard)
    out = np.zeros(((j1 - j0) * rows, n_mels), np.float16)
    codec = Blosc()
    for j in range(j0, j1):
        off, size = int(index[2 * j]), int(index[2 * j + 1])
        raw = codec.decode(blob[off : off + size])
        out[(j - j0) * rows : (j - j0 + 1) * rows] = np.frombuffer(raw, dtype="<f2").reshape(rows, n_mels)
    return out[a - j0 * rows : z - j0 * rows]


def decoder_ab(store_path: Path, rounds: int) -> tuple[float, float]:
    """MB/s of float16 out of the shard decoder now (into place) and before (copy), the
    two alternating shard by shard over the train shards in memory; medians of rounds."""
    import emonet
    from emonet.store.zarr_backend import decode_shard

    store = emonet.open_store(store_path, verify=False)
    jobs = []
    for task in TASKS:
        r = store.partition(task, "train")._reader
        for k in range(len(r.block_bounds) - 1):
            n = int(r.block_bounds[k + 1] - r.block_bounds[k])
            jobs.append((r.block_path(k).read_bytes(), n, r.features.shards[0], r.features.chunks[0], 128))
    now, before = [], []
    for _ in range(rounds):
        t = {decode_shard: 0.0, _decode_copy: 0.0}
        total = 0
        for job in jobs:
            for fn in (decode_shard, _decode_copy) if len(now) % 2 == 0 else (_decode_copy, decode_shard):
                t0 = time.perf_counter()
                x = fn(*job)
                t[fn] += time.perf_counter() - t0
            total += x.nbytes
        now.append(total / t[decode_shard] / 1e6)
        before.append(total / t[_decode_copy] / 1e6)
    return statistics.median(now), statistics.median(before)


_ONE = """
import json, os, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
import emonet
assert emonet.__file__.startswith({tree!r}), emonet.__file__
from emonet.data import store_access
from emonet.training import batches
store_access.CACHE.budget = {budget}
store = Path({store!r})
for task in {tasks!r}:  # a first epoch: imports, partitions opened, allocator warmed
    for _ in batches(store, task, batch_size=64, window=4.0, seed=0, epoch=1, band_norm={band_norm}):
        pass
for p in store.rglob("*"):
    if p.is_file():
        fd = os.open(p, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
rates = []
for _ in range(2):  # cold, then warm: windows per wall second and per CPU second
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    for task in {tasks!r}:
        for x, _, _ in batches(store, task, batch_size=64, window=4.0, seed=0, epoch=0, band_norm={band_norm}):
            n += len(x)
    rates += [n / (time.perf_counter() - t0), n / (time.process_time() - c0)]
print(json.dumps(rates))
"""


def trees_ab(
    trees: list[str], labels: list[str], stores: dict, rounds: int, band_norm: bool = False, frame_cache: bool = False
) -> None:
    """Cold and warm windows/s of each source tree (its emonet on PYTHONPATH, a fresh process
    per measurement, the trees alternating in each round), per store setting. With
    ``frame_cache`` the frame cache is on (2048 MiB), so after the first epoch both epochs
    read cached frames: "cold" and "warm" then both measure the cached path."""
    import json

    res = {(t, lab): [] for t in trees for lab in labels}
    loads = []
    for r in range(rounds):
        for lab in labels:
            for t in trees[r % len(trees) :] + trees[: r % len(trees)]:
                budget = 2048 * 2**20 if frame_cache else 0
                tree = str(Path(t).resolve())
                code = _ONE.format(tree=tree, store=str(stores[lab]), tasks=TASKS, band_norm=band_norm, budget=budget)
                env = {**os.environ, "PYTHONPATH": t, "EMONET_CACHE_MB": str(budget // 2**20)}
                out = subprocess.run(
                    [sys.executable, "-c", code], env=env, cwd=t, capture_output=True, text=True, check=True
                )
                res[(t, lab)].append(json.loads(out.stdout.strip().splitlines()[-1]))
                loads.append(os.getloadavg()[0])
        print(f"round {r + 1} done", flush=True)
    print(f"CPU: {cpu_name()}; load average (1 min) {min(loads):.1f}-{max(loads):.1f}; medians of {rounds} rounds")
    print(f"band_norm {band_norm}, frame cache {'on (cached epochs)' if frame_cache else 'off'}")
    print("| tree | setting | cold windows/s | cold /CPU-s | warm windows/s | warm /CPU-s |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for lab in labels:
        for t in trees:
            m = [statistics.median(r[i] for r in res[(t, lab)]) for i in range(4)]
            print(f"| {t} | {lab} | " + " | ".join(f"{v:,.0f}" for v in m) + " |")


_STREAM = """
import json, os, statistics, time
import numpy as np, torch
torch.set_num_threads(1)
from emonet.utils.allocator import keep_large_buffers
keep_large_buffers()  # as the trainer does
from emonet.data import store_access
from emonet.data.crops import Normalizer
from emonet.store import open_store
from emonet.training.streams import StreamSpec, epoch_batch_count, stream
store_access.CACHE.budget = 0  # the frame cache off: every window decoded from the block files
store = open_store({store!r})
its = []
for task in {tasks!r}:
    part = store_access.open_partition(store, task, "train")
    index = store_access.partition_index(part)
    spec = StreamSpec(task=task, band_norm={band_norm})
    mean, std = store.normalization(task)
    if not {band_norm}:  # the original's raw log-mels
        mean, std = np.zeros_like(mean), np.ones_like(std)
    its.append((stream(part, index, spec, Normalizer(mean, std), 0, 1), epoch_batch_count(index, spec, 0, 0, 1)))
rates = []
for epoch in range({epochs} + 1):  # epoch 0: imports, partitions opened, buffers grown
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    for it, nb in its:
        for _ in range(nb):
            n += len(next(it)[0])
    if epoch:
        rates.append((n / (time.perf_counter() - t0), n / (time.process_time() - c0)))
print(json.dumps([statistics.median(r[0] for r in rates), statistics.median(r[1] for r in rates)]))
"""


def stream_rates(labels: list[str], stores: dict, rounds: int, band_norm: bool, epochs: int = 4) -> None:
    """The trainer's loader in its steady state: one process per setting and round (the
    settings rotating), three endless train streams (``emonet.training.streams.stream``, the
    shuffle buffer reused, glibc malloc as the trainer sets it), the frame cache off, the
    files in the page cache; median windows/s of ``epochs`` epochs after the first."""
    import json

    res = {lab: [] for lab in labels}
    loads = []
    for r in range(rounds):
        for lab in labels[r % len(labels) :] + labels[: r % len(labels)]:
            code = _STREAM.format(store=str(stores[lab]), tasks=TASKS, band_norm=band_norm, epochs=epochs)
            env = {**os.environ, "EMONET_CACHE_MB": "0"}
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            res[lab].append(json.loads(out.stdout.strip().splitlines()[-1]))
            loads.append(os.getloadavg()[0])
        print(f"round {r + 1} done", flush=True)
    print(f"CPU: {cpu_name()}; load average (1 min) {min(loads):.1f}-{max(loads):.1f}; medians of {rounds} rounds")
    print(f"band_norm {band_norm}; trainer streams, frame cache off, page cache warm")
    print("| setting | windows/s | windows/CPU-s | CPU per window, us |\n| --- | ---: | ---: | ---: |")
    for lab in labels:
        wall, cpu = (statistics.median(r[i] for r in res[lab]) for i in range(2))
        print(f"| {lab} | {wall:,.0f} | {cpu:,.0f} | {1e6 / cpu:.0f} |")


def sizes(store_path: Path) -> tuple[int, int]:
    """(bytes of the train partitions' feature files, bytes of their frames as float16)."""
    import emonet

    store = emonet.open_store(store_path, verify=False)
    disk = sum(p.stat().st_size for p in shard_files(store_path))
    raw = sum(int(store.partition(t, "train").offsets[-1]) * 128 * 2 for t in TASKS)
    return disk, raw


def cpu_name() -> str:
    info = Path("/proc/cpuinfo").read_text().splitlines()

    def field(name):
        return next((ln.split(":", 1)[1].strip() for ln in info if ln.split(":")[0].strip() == name), "?")

    return f"{field('model name')}, family {field('cpu family')}, model {field('model')}, {os.cpu_count()} cores"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000, help="demo files per task")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default=None, help="comma-separated settings (default: all)")
    ap.add_argument("--decoder", action="store_true", help="only: the shard decoder now vs before, per codec")
    ap.add_argument("--trees", default=None, help="comma-separated source trees: only their cold/warm epochs")
    ap.add_argument("--band-norm", action="store_true", help="with --trees: batches standardised per mel band")
    ap.add_argument("--frame-cache", action="store_true", help="with --trees: the frame cache on (cached epochs)")
    ap.add_argument("--stream", action="store_true", help="only: the trainer's streams in their steady state")
    args = ap.parse_args()

    import torch

    from emonet.data import store_access

    torch.set_num_threads(1)  # as in a loader worker
    store_access.CACHE.budget = 0  # the frame cache off
    labels = args.only.split(",") if args.only else list(SETTINGS)
    corpus, _ = corpus_and_store("codecs", args.files, 3.0, 8.0)
    stores = {lab: make_store(lab, corpus) for lab in labels}
    keys = ("cold", "cold_cpu", "warm", "warm_cpu", "read", "decode")
    res: dict[str, dict[str, list[float]]] = {lab: {k: [] for k in keys} for lab in labels}
    loads, resident = [], []
    windows = 0
    if not args.rounds:
        return
    if args.trees:
        trees_ab(args.trees.split(","), labels, stores, args.rounds, args.band_norm, args.frame_cache)
        return
    if args.stream:
        stream_rates(labels, stores, args.rounds, args.band_norm)
        return
    if args.decoder:
        print(f"CPU: {cpu_name()}; load average {os.getloadavg()[0]:.1f}")
        print("| setting | decode into place MB/s | decode + copy (before) MB/s |\n| --- | ---: | ---: |")
        for lab in labels:
            if SETTINGS[lab][0] is not None:
                now, before = decoder_ab(stores[lab], args.rounds)
                print(f"| {lab} | {now:,.0f} | {before:,.0f} |", flush=True)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        return
    for r in range(args.rounds):
        order = labels[r % len(labels) :] + labels[: r % len(labels)]
        for lab in order:
            files = store_files(stores[lab])
            drop_cache(files)
            resident.append(resident_bytes(shard_files(stores[lab])))
            cold, cold_cpu, windows = epoch_rate(stores[lab])
            warm, warm_cpu, _ = epoch_rate(stores[lab])
            res[lab]["cold_cpu"].append(cold_cpu)
            res[lab]["warm_cpu"].append(warm_cpu)
            shards = shard_files(stores[lab])
            drop_cache(shards)
            rd = read_rate(shards)
            res[lab]["cold"].append(cold)
            res[lab]["warm"].append(warm)
            res[lab]["read"].append(rd)
            res[lab]["decode"].append(decode_rate(stores[lab]))
            loads.append(os.getloadavg()[0])
        print(f"round {r + 1}: " + ", ".join(f"{lab} {res[lab]['cold'][-1]:,.0f}" for lab in labels), flush=True)

    print(f"\nCPU: {cpu_name()}; load average (1 min) during the runs {min(loads):.1f}-{max(loads):.1f}")
    print(f"{windows} windows per epoch; page-cache bytes of the shards after each drop: max {max(resident)}")
    print(f"medians of {args.rounds} rounds\n")
    print(
        "| setting | codec | level | shuffle | block | size vs float32 | vs float16 | cold windows/s | "
        "cold windows/CPU-s | warm windows/s | warm windows/CPU-s | cold read+CRC MB/s | "
        "the disk's bound, windows/s | decode MB/s |"
    )
    print("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for lab in labels:
        cname, clevel, shuffle, block = SETTINGS[lab]
        disk, raw = sizes(stores[lab])
        m = {k: statistics.median(v) for k, v in res[lab].items()}
        print(
            f"| {lab} | {cname or 'none'} | {clevel if cname else '-'} | {shuffle or '-'} | "
            f"{block // 1024 if block else 'auto' if cname else '-'}{' KiB' if block else ''} | "
            f"{2 * raw / disk:.2f}x | {raw / disk:.2f}x | {m['cold']:,.0f} | {m['cold_cpu']:,.0f} | "
            f"{m['warm']:,.0f} | {m['warm_cpu']:,.0f} | "
            f"{m['read']:,.0f} | {m['read'] * 1e6 / (disk / windows):,.0f} | {m['decode']:,.0f} |"
        )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
