"""Extraction benchmark: emonet extract vs bare per-file loops, side by side in one run.

    .venv/bin/pip install -e '.[bench]'          # librosa, psutil
    .venv/bin/python bench/bench_extract.py --files 3000 --rounds 3
    .venv/bin/python bench/bench_extract.py --reads-only [--baseline OTHER_CHECKOUT]   # read speed only

Every variant runs in a fresh subprocess per round (so no variant inherits another's
threads or caches), times only its own work after imports and a warm-up, and the rounds
interleave the variants; medians are reported. On the same files:
  * bare: soundfile read + torchaudio MelSpectrogram + log per file, nothing written
  * librosa: soundfile read + librosa.feature.melspectrogram + log per file, nothing written
  * extract: emonet's Python API, the whole job (validation, decoding, features,
    compression, writing, stats), zarr and webdataset
  * as whole processes, interpreter start and imports included: the `emonet extract`
    CLI against the bare loop run as its own script
Then, once: peak memory of `emonet extract` with its workers (PSS and RSS summed over
the process tree, sampled) at 1/10, 1x and 10x the corpus (the 10x corpus lists
hard-linked copies of the same wavs under new names), store size against float32, and
sequential read speed of every partition through the API.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
TASKS = ["acted", "arousal", "valence"]

LOOPS = {
    "bare": """
import sys, time, soundfile as sf, torch, torchaudio
files = open(sys.argv[1]).read().split()
mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=1024, hop_length=512, f_min=20.0, f_max=8000.0, n_mels=128)
def run(fs):
    for f in fs:
        x, sr = sf.read(f, dtype="float32")
        torch.log(mel(torch.from_numpy(x)) + 1e-6)
run(files[:20])
t = time.perf_counter(); run(files); print(time.perf_counter() - t)
""",
    "librosa": """
import sys, time, soundfile as sf, numpy as np, librosa
files = open(sys.argv[1]).read().split()
def run(fs):
    for f in fs:
        x, sr = sf.read(f, dtype="float32")
        m = librosa.feature.melspectrogram(
            y=x, sr=sr, n_fft=1024, hop_length=512, n_mels=128, fmin=20, fmax=8000, power=2.0
        )
        np.log(m + 1e-6)
run(files[:20])
t = time.perf_counter(); run(files); print(time.perf_counter() - t)
""",
    "extract": """
import sys, time, shutil
from pathlib import Path
from emonet.data.partitions import multi_task_sources
from emonet.extraction.runner import ExtractOptions, run_extract
import emonet.store.zarr_backend, emonet.store.wds_backend  # imports before timing, as the loops import torch
corpus, store, fmt = Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
srcs = multi_task_sources(corpus / "multi-task-setup", ["acted", "arousal", "valence"])
shutil.rmtree(store, ignore_errors=True)
t = time.perf_counter()
run_extract(ExtractOptions(store=store, data_path=corpus / "data", sources=srcs, backend=fmt))
print(time.perf_counter() - t)
""",
}


def corpus(out: Path, files: int) -> Path:
    from emonet.data.demo import generate_demo_corpus

    if not (out / "DONE").exists():
        shutil.rmtree(out, ignore_errors=True)
        generate_demo_corpus(out, files_per_task=files // len(TASKS), min_seconds=0.5, max_seconds=2.5, seed=1)
        (out / "DONE").write_text("ok")
    return out


def scaled_setup(src: Path, dst: Path, factor: float) -> Path:
    """A multi-task setup with ``factor`` times the rows of every csv: a prefix for
    factor < 1, or hard-linked copies of the wavs under new names for factor > 1."""
    shutil.rmtree(dst, ignore_errors=True)
    for task in TASKS:
        for name in ("train.csv", "val.csv", "test.csv"):
            lines = (src / "multi-task-setup" / task / name).read_text().splitlines()
            rows = lines[1:]
            if factor < 1:
                rows = rows[: max(3, int(len(rows) * factor))]
            else:
                out = []
                for copy in range(int(factor)):
                    for row in rows:
                        rel, label = row.split(",")
                        new = f"copies{copy}/{rel}"
                        target = src / "data" / new
                        if not target.exists():
                            target.parent.mkdir(parents=True, exist_ok=True)
                            os.link(src / "data" / rel, target)
                        out.append(f"{new},{label}")
                rows = out
            (dst / task).mkdir(parents=True, exist_ok=True)
            (dst / task / name).write_text("\n".join([lines[0], *rows]) + "\n")
    return dst


def wav_list(c: Path) -> list[str]:
    files = []
    for task in TASKS:
        for name in ("train.csv", "val.csv", "test.csv"):
            for line in (c / "multi-task-setup" / task / name).read_text().splitlines()[1:]:
                files.append(str(c / "data" / line.split(",")[0]))
    return files


def timed_loop(name: str, *args: str) -> float:
    out = subprocess.run([sys.executable, "-c", LOOPS[name], *args], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return float(out.stdout.strip().splitlines()[-1])


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def cli_cmd(data: Path, setup: Path, store: Path) -> list[str]:
    shutil.rmtree(store, ignore_errors=True)
    exe = str(Path(sys.executable).with_name("emonet"))
    return [
        exe,
        "extract",
        "--store",
        str(store),
        "-dp",
        str(data),
        "--multi-task-setup",
        str(setup),
        "--tasks",
        *TASKS,
        "-q",
    ]


def process_tree_peak(cmd: list[str], every: float = 0.02) -> dict:
    """Peak memory of a command and its worker processes together, sampled every
    ``every`` s: the sum of PSS (shared pages split between the processes sharing them,
    the fair measure for forked workers) and the sum of RSS (counts shared pages once
    per process: an upper bound)."""
    import psutil

    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root = psutil.Process(proc.pid)
    peak_pss = peak_rss = 0
    while proc.poll() is None:
        pss = rss = 0
        try:
            for p in [root, *root.children(recursive=True)]:
                try:
                    m = p.memory_full_info()
                    pss, rss = pss + m.pss, rss + m.rss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
        except psutil.NoSuchProcess:
            break
        peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
        time.sleep(every)
    if proc.wait() != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr.read().decode()}")
    return {
        "seconds": round(time.perf_counter() - t, 2),
        "pss_mb": round(peak_pss / 1e6),
        "rss_sum_mb": round(peak_rss / 1e6),
    }


def read_all(store: Path, verify: bool = True) -> tuple[float, float]:
    """(wall seconds, audio seconds) reading every partition sequentially through the API,
    with the checksums checked (``verify``, the default) or not."""
    from emonet.store import open_store

    s = open_store(store, verify=verify)
    t = time.perf_counter()
    audio = 0.0
    for task in s.tasks:
        for part in s.partitions(task):
            p = s.partition(task, part)
            for _file, _label, _x in p:
                pass
            audio += float(p.seconds.sum())
    return time.perf_counter() - t, audio


def read_speeds(stores: dict[str, Path], rounds: int) -> dict[str, int]:
    """Median x real time of :func:`read_all` per store, checksums on and off, the variants
    interleaved in each round (the files are in the page cache after the first round)."""
    for store in stores.values():
        read_all(store)  # warm the page cache
    runs: dict[str, list[float]] = {f"{n}_{v}": [] for n in stores for v in ("checked", "unchecked")}
    for _ in range(rounds):
        for name, store in stores.items():
            for verify, v in ((True, "checked"), (False, "unchecked")):
                wall_s, audio = read_all(store, verify)
                runs[f"{name}_{v}"].append(audio / wall_s)
    return {k: round(statistics.median(v)) for k, v in runs.items()}


READ_ALL = """
import json, sys, time
import emonet
from emonet.store import open_store
def read_all(path, verify):
    s = open_store(path, verify=verify)
    t, audio = time.perf_counter(), 0.0
    for task in s.tasks:
        for name in s.partitions(task):
            p = s.partition(task, name)
            for _file, _label, _x in p:
                pass
            audio += float(p.seconds.sum())
    return audio / (time.perf_counter() - t)
read_all(sys.argv[1], sys.argv[2] == "on")  # warm-up: imports, page cache
print(json.dumps({"src": emonet.__file__, "x": read_all(sys.argv[1], sys.argv[2] == "on")}))
"""


def read_speeds_vs_baseline(stores: dict[str, Path], rounds: int, baseline: Path) -> dict[str, int]:
    """Median x real time of reading every partition, this tree (checksums on and off)
    against the checkout ``baseline`` (checksums on): a fresh process per variant and
    round, the variants alternating within each round."""
    here = str(ROOT)
    variants = {"checked": (here, "on"), "unchecked": (here, "off"), "baseline_checked": (str(baseline), "on")}
    runs: dict[str, list[float]] = {f"{n}_{v}": [] for n in stores for v in variants}
    for r in range(rounds):
        for name, store in stores.items():
            for v, (src, verify) in variants.items():
                cmd = [sys.executable, "-c", READ_ALL, str(Path(store).resolve()), verify]
                env = {**os.environ, "PYTHONPATH": src}
                out = json.loads(
                    subprocess.run(cmd, env=env, cwd=src, check=True, capture_output=True, text=True).stdout
                )
                assert out["src"].startswith(src), out["src"]
                runs[f"{name}_{v}"].append(out["x"])
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}x" for k, v in runs.items()), flush=True)
    return {k: round(statistics.median(v)) for k, v in runs.items()}


def reads_only(a, c: Path) -> None:
    """--reads-only: extract the corpus once per backend, then compare read speeds."""
    from emonet.data.partitions import multi_task_sources
    from emonet.extraction.runner import ExtractOptions, run_extract

    srcs = multi_task_sources(c / "multi-task-setup", TASKS)
    stores = {"zarr": a.out / "store-zarr", "webdataset": a.out / "store-wds"}
    for fmt, store in stores.items():
        shutil.rmtree(store, ignore_errors=True)
        run_extract(ExtractOptions(store=store, data_path=c / "data", sources=srcs, backend=fmt), notify=print)
    if a.baseline:
        speeds = read_speeds_vs_baseline(stores, a.rounds, a.baseline.resolve())
    else:
        speeds = read_speeds(stores, a.rounds)
    (a.out / "read.json").write_text(json.dumps(speeds, indent=1))
    print(json.dumps(speeds, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reads-only", action="store_true", help="only the read speed, checksums on and off")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--baseline", type=Path, help="with --reads-only: also read through this checkout of emonet")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    c = corpus(a.out / f"corpus-{a.files}", a.files)
    if a.reads_only:
        reads_only(a, c)
        return
    files = wav_list(c)
    audio = sum(sf.info(f).duration for f in files)
    flist = a.out / "files.txt"
    flist.write_text("\n".join(files) + "\n")
    print(f"corpus: {len(files)} files, {audio / 3600:.3f} h of audio, cores: {os.cpu_count()}", flush=True)

    res: dict[str, list[float]] = {
        k: [] for k in ("bare", "librosa", "extract_zarr", "extract_wds", "bare_process", "extract_cli")
    }
    for r in range(a.rounds):
        res["bare"].append(timed_loop("bare", str(flist)))
        res["extract_zarr"].append(timed_loop("extract", str(flist), str(c), str(a.out / "store-zarr"), "zarr"))
        res["librosa"].append(timed_loop("librosa", str(flist)))
        res["extract_wds"].append(timed_loop("extract", str(flist), str(c), str(a.out / "store-wds"), "webdataset"))
        res["bare_process"].append(wall([sys.executable, "-c", LOOPS["bare"], str(flist)]))
        res["extract_cli"].append(wall(cli_cmd(c / "data", c / "multi-task-setup", a.out / "store-cli")))
        print(f"round {r + 1}: " + ", ".join(f"{k} {audio / v[-1]:,.0f}x" for k, v in res.items()), flush=True)
    speed = {k: audio / statistics.median(v) for k, v in res.items()}

    memory = {}
    for label, factor in (("0.1x", 0.1), ("1x", 1), ("10x", 10)):
        setup = scaled_setup(c, a.out / f"setup-{label}", factor)
        n = sum(
            len((setup / t / n).read_text().splitlines()) - 1
            for t in TASKS
            for n in ("train.csv", "val.csv", "test.csv")
        )
        memory[f"{n} files"] = process_tree_peak(cli_cmd(c / "data", setup, a.out / f"store-mem-{label}"))
        print(f"memory at {n} files: {memory[f'{n} files']}", flush=True)

    from emonet.store import open_store

    def ratio(store: Path) -> float:
        info = open_store(store).info()
        parts = [p for t in info["tasks"].values() for p in t["partitions"].values()]
        return sum(p["frames"] for p in parts) * 128 * 4 / sum(p["bytes_on_disk"] for p in parts)

    reads = read_speeds({"zarr": a.out / "store-zarr", "wds": a.out / "store-wds"}, 3)
    summary = {
        "files": len(files),
        "audio_hours": round(audio / 3600, 3),
        "rounds": a.rounds,
        "x_real_time": {k: round(v) for k, v in speed.items()},
        "extract_vs_bare": round(speed["extract_zarr"] / speed["bare"], 2),
        "extract_vs_librosa": round(speed["extract_zarr"] / speed["librosa"], 2),
        "extract_cli_vs_bare_process": round(speed["extract_cli"] / speed["bare_process"], 2),
        "peak_memory_process_tree": memory,
        "store_ratio_vs_float32": round(ratio(a.out / "store-zarr"), 3),
        "wds_ratio_vs_float32": round(ratio(a.out / "store-wds"), 3),
        "read_x_real_time": reads,
    }
    (a.out / "extract.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
