"""Benchmarks of the trainer: input throughput, CPU training speed, demo-corpus UAR.

    python bench/bench_train.py input  [--files 200] [--epochs 5]   # batches() vs wav + mel per sample
    python bench/bench_train.py input --baseline SRC [--rounds 5]   # cold reads: this tree vs checkout SRC
    python bench/bench_train.py speed  [--steps 6] [--batch 64]     # default cnn, samples/s, data wait
    python bench/bench_train.py uar    [--epochs 20]                # demo UAR: scratch, multi-task, adapters, logreg

Corpora and stores are written under bench/out/ (ignored by git) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from emonet.training.progress import Progress  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
TASKS = ["acted", "arousal", "valence"]


def corpus_and_store(
    name: str, files: int, lo: float, hi: float, n_mels: int = 128, backend: str = "zarr"
) -> tuple[Path, Path]:
    """A demo corpus and its store (zarr or webdataset, default shards), made once."""
    from emonet.data.demo import generate_demo_corpus
    from emonet.data.features import FeatureConfig
    from emonet.data.partitions import multi_task_sources
    from emonet.extraction.runner import ExtractOptions, run_extract

    corpus, store = OUT / f"{name}-corpus", OUT / (f"{name}-store" + ("" if backend == "zarr" else f"-{backend}"))
    if not (corpus / "multi-task-setup").is_dir():
        generate_demo_corpus(corpus, files_per_task=files, min_seconds=lo, max_seconds=hi)
    if not store.is_dir():
        sources = multi_task_sources(corpus / "multi-task-setup", TASKS)
        run_extract(ExtractOptions(store, corpus / "data", sources, FeatureConfig(n_mels=n_mels), backend=backend))
    return corpus, store


# ----------------------------------------------------------------------------- input
def naive_windows_per_second(corpus: Path, store_path: Path, limit: int) -> float:
    """A per-sample dataset: read the wav, compute the log-mel, crop 4 s, normalise."""
    import pandas as pd
    import soundfile as sf

    import emonet
    from emonet.data.features import FeatureConfig, LogMel

    fc = FeatureConfig()
    logmel = LogMel(fc)
    store = emonet.open_store(store_path)
    mean, std = store.normalization("acted")
    rows = pd.read_csv(corpus / "multi-task-setup" / "acted" / "train.csv")
    files = [corpus / "data" / f for f in rows.iloc[:, 0]][:limit]
    rng, window = np.random.default_rng(0), fc.seconds_to_frames(4.0)
    t0 = time.perf_counter()
    for f in files:
        wav, _ = sf.read(str(f), dtype="float32")
        x = logmel(torch.from_numpy(wav))
        start = int(rng.integers(0, max(len(x) - window, 0) + 1))
        crop = (x[start : start + window] - mean) / std
        out = np.zeros((window, crop.shape[1]), np.float32)
        out[: len(crop)] = crop
    return len(files) / (time.perf_counter() - t0)


def _batches_rate(store, epochs: range) -> list[float]:
    from emonet.training import batches

    rates = []
    for epoch in epochs:
        n, t0 = 0, time.perf_counter()
        for task in TASKS:
            for x, _, _ in batches(store, task, batch_size=64, window=4.0, seed=0, epoch=epoch):
                n += len(x)
        rates.append(n / (time.perf_counter() - t0))
    return rates


def bench_input(args) -> None:
    """batches() over the three train partitions, 4 s windows, batch 64: cold (every epoch
    decoded from zarr: cache off) and warm (normalised frames cached after the first epoch),
    against the per-sample wav + mel dataset. One process, torch threads as given."""
    from emonet.data import store_access

    torch.set_num_threads(args.threads)
    corpus, store = corpus_and_store("input", args.files, 3.0, 8.0)
    if args.baseline:
        return cold_reads_vs_baseline(args)
    store_access.CACHE.budget = 0
    cold = _batches_rate(store, range(args.epochs))
    store_access.CACHE.budget = 2**31
    _batches_rate(store, range(1))  # fills the cache
    warm = _batches_rate(store, range(1, args.epochs + 1))
    naive = naive_windows_per_second(corpus, store, args.naive)
    med = {k: float(np.median(v)) for k, v in (("cold", cold), ("warm", warm))}
    print(json.dumps({"cold": [round(r) for r in cold], "warm": [round(r) for r in warm],
                      "naive_windows_per_s": round(naive, 1),
                      "median_cold": round(med["cold"]), "median_warm": round(med["warm"]),
                      "cold_over_naive": round(med["cold"] / naive, 1),
                      "warm_over_naive": round(med["warm"] / naive, 1)}))  # fmt: skip


COLD_EPOCH = """
import json, sys, time, torch
import emonet
from emonet import open_store
from emonet.training import batches, store_access
torch.set_num_threads(int(sys.argv[3]))
store_access.CACHE.budget = 0  # the frame cache off: every read goes to the files
store = open_store(sys.argv[1], verify=sys.argv[2] == "on")
def epoch(e):
    n, t0 = 0, time.perf_counter()
    for task in sys.argv[4:]:
        for x, _, _ in batches(store, task, batch_size=64, window=4.0, seed=0, epoch=e):
            n += len(x)
    return n / (time.perf_counter() - t0)
epoch(0)  # warm-up: imports, page cache, kernels
print(json.dumps({"src": emonet.__file__, "rate": epoch(1)}))
"""


def cold_reads_vs_baseline(args) -> None:
    """--baseline SRC: cold 4 s windows/s (frame cache off) of this tree, checksums on (every
    read checked) and off, against the checkout SRC (checksums on, as it reads them), for
    the zarr and the webdataset store. Each variant runs in a fresh process per round, the
    variants alternate within each round; medians reported."""
    import statistics
    import subprocess

    here = str(Path(__file__).resolve().parents[1])
    variants = {"this tree, checked": (here, "on"), "this tree, unchecked": (here, "off"),
                "baseline, checked": (str(Path(args.baseline).resolve()), "on")}  # fmt: skip
    stores = {b: corpus_and_store("input", args.files, 3.0, 8.0, backend=b)[1] for b in ("zarr", "webdataset")}
    runs: dict[str, list[float]] = {f"{b}: {v}": [] for b in stores for v in variants}
    for r in range(args.rounds):
        for b, store in stores.items():
            for v, (src, verify) in variants.items():
                env = {**os.environ, "PYTHONPATH": src}
                cmd = [sys.executable, "-c", COLD_EPOCH, str(store), verify, str(args.threads), *TASKS]
                out = json.loads(
                    subprocess.run(cmd, env=env, cwd=src, check=True, capture_output=True, text=True).stdout
                )
                assert out["src"].startswith(src), out["src"]
                runs[f"{b}: {v}"].append(out["rate"])
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in runs.items()), flush=True)
    print(json.dumps({k: round(statistics.median(v)) for k, v in runs.items()}, indent=1))


# ----------------------------------------------------------------------------- speed
class Collect(Progress):
    def __init__(self):
        self.epochs = []

    def epoch(self, s) -> None:
        self.epochs.append(s)
        print(f"epoch {s.epoch}: devel UAR {s.score:.3f} {s.extra}", flush=True)


def bench_speed(args) -> None:
    from emonet.models import ModelConfig
    from emonet.training import TrainConfig, train

    _, store = corpus_and_store("input", args.files, 3.0, 8.0)
    p = Collect()
    cfg = TrainConfig(
        stores=[str(store)], tasks=["acted"], experiments=str(OUT / "runs-speed"), model=ModelConfig(),
        batch_size=args.batch, window=4.0, epochs=args.epochs, steps_per_epoch=args.steps, device="cpu",
        workers=args.workers,
    )  # fmt: skip
    train(cfg, progress=p)
    for s in p.epochs:
        e = s.extra
        print(json.dumps({"epoch": s.epoch, "samples_per_s": round(e["samples"] / e["train_s"], 2),
                          "data_wait_share": round(e["data_wait_s"] / e["train_s"], 5)}))  # fmt: skip


# ------------------------------------------------------------------------------- uar
def logistic_regression(store_path: Path, task: str) -> dict:
    """Multinomial logistic regression (torch, L-BFGS, L2 1e-3) on each utterance's mean
    and std of the log-mel over time, standardised with the train statistics."""
    import emonet
    from emonet.evaluation.metrics import confusion_matrix, uar

    store = emonet.open_store(store_path)

    def feats(part):
        p = store.partition(task, part)
        x = np.stack([np.concatenate([m.mean(0), m.std(0)]) for _, _, m in p])
        return torch.tensor(x, dtype=torch.float32), torch.tensor(p.label_ids, dtype=torch.long)

    (xt, yt), (xd, yd), (xs, ys) = feats("train"), feats("devel"), feats("test")
    mu, sd = xt.mean(0), xt.std(0).clamp_min(1e-5)
    xt, xd, xs = (xt - mu) / sd, (xd - mu) / sd, (xs - mu) / sd
    k = len(store.classes(task))
    lin = torch.nn.Linear(xt.shape[1], k)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=200)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(xt), yt) + 1e-3 * (lin.weight**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return {p: uar(confusion_matrix(y, lin(x).argmax(1), k)) for p, x, y in (("devel", xd, yd), ("test", xs, ys))}


def bench_uar(args) -> None:
    from emonet.models import ModelConfig
    from emonet.training import TrainConfig, train

    _, store = corpus_and_store("uar", args.files, 1.0, 3.0)
    model = ModelConfig(n_blocks=args.blocks, n_filters=args.filters)
    common = dict(stores=[str(store)], experiments=str(OUT / "runs-uar"), model=model, batch_size=32, window=2.0,
                  epochs=args.epochs, patience=args.patience, steps_per_epoch=args.spe, device="cpu",
                  learning_rate=args.lr)  # fmt: skip
    table: dict[str, dict] = {t: {"logreg": logistic_regression(store, t)} for t in TASKS}
    for t in TASKS:
        _, res = train(TrainConfig(tasks=[t], mode="scratch", **common))
        table[t]["scratch"] = {p: res[t][p]["uar"] for p in ("devel", "test")}
    run, res = train(TrainConfig(tasks=TASKS, mode="adapters", **common))
    for t in TASKS:
        table[t]["multi-task adapters"] = {p: res[t][p]["uar"] for p in ("devel", "test")}
    seen, unseen = TASKS[:2], TASKS[2]
    run2, _ = train(TrainConfig(tasks=seen, mode="adapters", **common))
    _, res = train(TrainConfig(tasks=[unseen], mode="adapters", initial_model=str(run2 / "best.safetensors"), **common))
    table[unseen][f"adapters on a model of {'+'.join(seen)}"] = {p: res[unseen][p]["uar"] for p in ("devel", "test")}
    print(json.dumps(table, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    a = sub.add_parser("input")
    a.add_argument("--files", type=int, default=400, help="wav files per task (3-8 s each)")
    a.add_argument("--epochs", type=int, default=5)
    a.add_argument("--naive", type=int, default=100, help="files read by the per-sample dataset")
    a.add_argument("--threads", type=int, default=1, help="torch threads (1: as in a loader worker)")
    a.add_argument("--baseline", help="a checkout of other emonet code: compare cold reads with it instead")
    a.add_argument("--rounds", type=int, default=5, help="rounds of the --baseline comparison")
    s = sub.add_parser("speed")
    s.add_argument("--files", type=int, default=400)
    s.add_argument("--steps", type=int, default=6)
    s.add_argument("--epochs", type=int, default=1)
    s.add_argument("--batch", type=int, default=64)
    s.add_argument("--workers", type=int, default=0)
    u = sub.add_parser("uar")
    u.add_argument("--files", type=int, default=120)
    u.add_argument("--epochs", type=int, default=20)
    u.add_argument("--patience", type=int, default=5)
    u.add_argument("--spe", type=int, default=12)
    u.add_argument("--blocks", type=int, default=1)
    u.add_argument("--filters", type=int, default=8)
    u.add_argument("--lr", type=float, default=0.05)
    args = ap.parse_args()
    {"input": bench_input, "speed": bench_speed, "uar": bench_uar}[args.what](args)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
