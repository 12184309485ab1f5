"""Reading a webdataset store: emonet's own ustar parser against webdataset's readers.

    python bench/bench_wds_read.py [--files 3000] [--frames-per-shard 8192] [--rounds 3]

Makes (once, under bench/out/) a demo corpus and its webdataset store, then reads the
largest partition in three ways, in every round one after the other (page cache warm),
and prints frames/s, median of the rounds:

* ``emonet``: the store's reader as it is (``emonet.open_store``, checksums on): each
  block's tar is read once, its CRC-32 checked, and the samples parsed from those bytes
  by ``wds_backend.tar_members`` (a ustar parser of its own);
* ``wds-tar``: the same path with the parser swapped for webdataset's public tar reader,
  ``webdataset.tariterators.tar_file_iterator`` over the same checked bytes (so the CRC
  and every check of the index stay);
* ``wds-pipeline``: ``webdataset.WebDataset(urls)`` streaming the tar files itself, each
  sample's ``logmel.blosc`` decoded with the shape in its ``json``: webdataset's own
  reader, with no CRC and no check against the index (it cannot check bytes that it
  reads itself). A block is one WebDataset over that block's url.

Last, the parsers alone on a tar in another form (the same tars repacked with a pax
header per member, which the own parser leaves to its fallback): ms per tar with
webdataset's ``tar_file_iterator`` (the fallback) and with :mod:`tarfile`.

Three reads: the whole partition (every block in order), random blocks (whole tars in a
random order, as many as the partition has) and random utterances (what the trainer
asks for: one utterance's frames, which ``emonet`` decodes alone and the pipeline can
only reach by streaming its tar to it).
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OUT = Path(__file__).resolve().parent / "out"


def make_store(files: int, frames_per_shard: int) -> Path:
    """A demo corpus (1-3 s clips) and its webdataset store, made once."""
    from emonet.data.demo import generate_demo_corpus
    from emonet.data.features import FeatureConfig
    from emonet.data.partitions import multi_task_sources
    from emonet.extraction.runner import ExtractOptions, run_extract

    corpus, store = OUT / f"wdsread-{files}-corpus", OUT / f"wdsread-{files}-{frames_per_shard}-store"
    if not (corpus / "multi-task-setup").is_dir():
        generate_demo_corpus(corpus, files_per_task=files, tasks=["acted"])
    if not store.is_dir():
        sources = multi_task_sources(corpus / "multi-task-setup", ["acted"])
        opts = ExtractOptions(
            store, corpus / "data", sources, FeatureConfig(), backend="webdataset", frames_per_shard=frames_per_shard
        )
        run_extract(opts)
    return store


def wds_tar_members(blob: bytes) -> list[tuple[str, bytes]]:
    """(name, bytes) of a tar in memory through webdataset's public tar reader."""
    from webdataset.tariterators import tar_file_iterator

    return [(s["fname"], s["data"]) for s in tar_file_iterator(io.BytesIO(blob))]


def pipeline_frames(urls: list[str], keys: set[str] | None = None) -> list[np.ndarray]:
    """Frames of every sample (or of the samples ``keys``) of the tars ``urls``, read by
    ``webdataset.WebDataset``."""
    import webdataset as wds

    from emonet.store.wds_backend import decode_logmel

    out = []
    for sample in wds.WebDataset(urls, shardshuffle=False):
        if keys is not None and sample["__key__"] not in keys:
            continue
        meta = json.loads(sample["json"])
        out.append(decode_logmel(sample["logmel.blosc"], meta["frames"], meta["n_mels"]))
    return out


class Emonet:
    """Reads through ``emonet.open_store`` (``parser``: the tar parser it uses)."""

    def __init__(self, store: Path, task: str, name: str, parser=None):
        from emonet.store import open_store, wds_backend

        self.parser = parser or wds_backend.tar_members
        self.part = open_store(store).partition(task, name)

    def _with_parser(self, fn):
        from emonet.store import wds_backend

        saved, wds_backend.tar_members = wds_backend.tar_members, self.parser
        try:
            return fn()
        finally:
            wds_backend.tar_members = saved

    def blocks(self, ks) -> int:
        return self._with_parser(lambda: sum(len(self.part.read_block(k)) for k in ks))

    def utterances(self, idx) -> int:
        return self._with_parser(lambda: sum(len(self.part.logmel(int(i), np.float16)) for i in idx))


class Pipeline:
    """Reads through ``webdataset.WebDataset`` (no CRC, no index checks)."""

    def __init__(self, store: Path, task: str, name: str):
        from emonet.store import open_store

        part = open_store(store).partition(task, name)
        self.urls = [str(part._reader.block_path(k)) for k in range(part.n_blocks)]
        self.bounds, self.offsets = part.block_bounds, part.offsets

    def blocks(self, ks) -> int:
        ks = list(ks)
        if ks == list(range(len(self.urls))):  # the whole partition: one stream over every tar
            return sum(len(x) for x in pipeline_frames(self.urls))
        return sum(len(np.concatenate(pipeline_frames([self.urls[k]]))) for k in ks)

    def utterances(self, idx) -> int:
        n = 0
        for i in idx:
            k = int(np.searchsorted(self.bounds, self.offsets[i], side="right") - 1)
            n += sum(len(x) for x in pipeline_frames([self.urls[k]], {f"{int(i):09d}"}))
        return n


def parse_ms(tars: list[Path], rounds: int) -> dict[str, float]:
    """Median ms per tar to list the members of the pax-repacked ``tars`` (and of the
    tars as written, with the own parser), the parsers alternating in each round."""
    import tarfile

    from emonet.store import wds_backend

    def repack(blob: bytes) -> bytes:
        out = io.BytesIO()
        with (
            tarfile.open(fileobj=io.BytesIO(blob)) as a,
            tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as b,
        ):
            for m in a:
                m.pax_headers = {"comment": "repacked"}
                b.addfile(m, a.extractfile(m))
        return out.getvalue()

    def with_tarfile(blob: bytes) -> list:
        with tarfile.open(fileobj=io.BytesIO(blob)) as tf:
            return [(m.name, tf.extractfile(m).read()) for m in tf if m.isfile()]

    plain = [t.read_bytes() for t in tars]
    pax = [repack(b) for b in plain]
    parsers = {
        "own parser, tars as written": (wds_backend.tar_members, plain),
        "webdataset, pax tars": (wds_tar_members, pax),
        "tarfile, pax tars": (with_tarfile, pax),
    }
    runs: dict[str, list[float]] = {p: [] for p in parsers}
    for _ in range(rounds):
        for p, (fn, blobs) in parsers.items():
            t = time.perf_counter()
            for b in blobs:
                fn(b)
            runs[p].append((time.perf_counter() - t) * 1e3 / len(blobs))
    return {p: statistics.median(v) for p, v in runs.items()}


def timed(fn) -> float:
    t = time.perf_counter()
    frames = fn()
    return frames / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=3000, help="demo files (all partitions)")
    ap.add_argument("--frames-per-shard", type=int, default=8192, help="frames per tar")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--utterances", type=int, default=200, help="random utterances read per round")
    a = ap.parse_args()
    store = make_store(a.files, a.frames_per_shard)
    task, name = "acted", "train"
    readers = {
        "emonet": Emonet(store, task, name),
        "wds-tar": Emonet(store, task, name, wds_tar_members),
        "wds-pipeline": Pipeline(store, task, name),
    }
    part = readers["emonet"].part
    n_blocks, n = part.n_blocks, len(part)
    rng = np.random.default_rng(0)
    reads = {
        "partition": lambda r: r.blocks(range(n_blocks)),
        "random blocks": lambda r: r.blocks(rng.integers(0, n_blocks, n_blocks)),
        "random utterances": lambda r: r.utterances(rng.integers(0, n, a.utterances)),
    }
    totals = {r: reads["partition"](readers[r]) for r in readers}  # warm-up, and all must agree
    assert len(set(totals.values())) == 1, totals
    print(f"{store.name}: {task}/{name}, {n} utterances, {totals['emonet']:,} frames, {n_blocks} tars")
    runs = {(r, w): [] for w in reads for r in readers}
    for rnd in range(a.rounds):
        for w, read in reads.items():
            for r, reader in readers.items():
                runs[r, w].append(timed(lambda: read(reader)))  # noqa: B023 (called at once)
        print(f"round {rnd + 1}: " + ", ".join(f"{r} {w} {v[-1]:,.0f}" for (r, w), v in runs.items()), flush=True)
    print(f"\nframes/s, median of {a.rounds} rounds ({platform.processor() or platform.machine()})")
    print("| read | " + " | ".join(readers) + " |")
    print("| --- |" + " ---: |" * len(readers))
    for w in reads:
        print(f"| {w} | " + " | ".join(f"{statistics.median(runs[r, w]):,.0f}" for r in readers) + " |")
    tars = [part._reader.block_path(k) for k in range(n_blocks)]
    print("\nms per tar to list its members, median of the rounds")
    for p, ms in parse_ms(tars, a.rounds).items():
        print(f"| {p} | {ms:.2f} |")


if __name__ == "__main__":
    main()
