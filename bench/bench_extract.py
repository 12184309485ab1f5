"""Extraction benchmark: emonet extract vs bare per-file loops, side by side in one run.

    .venv/bin/pip install -e '.[bench]'          # librosa, psutil
    .venv/bin/python bench/bench_extract.py --files 3000 --rounds 3

Measures, on the same files, interleaved over rounds (median reported):
  * bare loop: soundfile read + torchaudio MelSpectrogram + log, nothing written
  * librosa loop: soundfile read + librosa.feature.melspectrogram + log, nothing written
  * emonet extract through the Python API (the whole job: validation, decoding, features,
    compression, writing, stats) and as the CLI process (interpreter start included; the
    bare loop is then also timed as its own process)
and, once: peak RSS of the `emonet extract` process at two corpus sizes 10x apart, store
size against float32, and sequential read speed of every partition through the API.
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

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
TASKS = ["acted", "arousal", "valence"]

BARE = """
import sys, time, soundfile as sf, torch, torchaudio
files = [l.strip() for l in open(sys.argv[1])]
mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=1024, hop_length=512, f_min=20.0, f_max=8000.0, n_mels=128)
t = time.perf_counter()
for f in files:
    x, sr = sf.read(f, dtype="float32")
    m = torch.log(mel(torch.from_numpy(x)) + 1e-6)
print(time.perf_counter() - t)
"""


def corpus(out: Path, files: int) -> Path:
    from emonet.data.demo import generate_demo_corpus

    done = out / "DONE"
    if not done.exists():
        shutil.rmtree(out, ignore_errors=True)
        generate_demo_corpus(out, files_per_task=files // len(TASKS), min_seconds=0.5, max_seconds=2.5, seed=1)
        done.write_text("ok")
    return out


def subset(src: Path, dst: Path, fraction: float) -> Path:
    """A multi-task setup with the first ``fraction`` of every csv."""
    for task in TASKS:
        for name in ("train.csv", "val.csv", "test.csv"):
            lines = (src / "multi-task-setup" / task / name).read_text().splitlines()
            keep = lines[:1] + lines[1:][: max(3, int(len(lines[1:]) * fraction))]
            (dst / task).mkdir(parents=True, exist_ok=True)
            (dst / task / name).write_text("\n".join(keep) + "\n")
    return dst


def wav_list(c: Path) -> list[str]:
    files = []
    for task in TASKS:
        for name in ("train.csv", "val.csv", "test.csv"):
            for line in (c / "multi-task-setup" / task / name).read_text().splitlines()[1:]:
                files.append(str(c / "data" / line.split(",")[0]))
    return files


def bare_loop(files):
    import torch
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=1024, hop_length=512, f_min=20.0, f_max=8000.0, n_mels=128)
    t = time.perf_counter()
    for f in files:
        x, _ = sf.read(f, dtype="float32")
        torch.log(mel(torch.from_numpy(x)) + 1e-6)
    return time.perf_counter() - t


def librosa_loop(files):
    import librosa

    t = time.perf_counter()
    for f in files:
        x, sr = sf.read(f, dtype="float32")
        np.log(librosa.feature.melspectrogram(y=x, sr=sr, n_fft=1024, hop_length=512, n_mels=128, fmin=20, fmax=8000, power=2.0) + 1e-6)
    return time.perf_counter() - t


def api_extract(c: Path, store: Path, fmt: str = "zarr") -> float:
    from emonet.data.partitions import multi_task_sources
    from emonet.extraction.runner import ExtractOptions, run_extract

    shutil.rmtree(store, ignore_errors=True)
    t = time.perf_counter()
    run_extract(ExtractOptions(store=store, data_path=c / "data", sources=multi_task_sources(c / "multi-task-setup", TASKS), backend=fmt))
    return time.perf_counter() - t


def process_peak_rss(cmd: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of a child process, from wait4's rusage."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss * 1024


def cli_extract(c: Path, setup: Path, store: Path) -> tuple[float, int]:
    shutil.rmtree(store, ignore_errors=True)
    exe = str(Path(sys.executable).with_name("emonet"))
    return process_peak_rss([exe, "extract", "--store", str(store), "-dp", str(c / "data"), "--multi-task-setup", str(setup), "--tasks", *TASKS, "-q"])


def read_all(store: Path) -> tuple[float, float]:
    """(wall seconds, audio seconds) reading every partition sequentially through the API."""
    from emonet.store import open_store

    s = open_store(store)
    t = time.perf_counter()
    audio = 0.0
    for task in s.tasks:
        for part in s.partitions(task):
            p = s.partition(task, part)
            for _file, _label, x in p:
                pass
            audio += float(p.seconds.sum())
    return time.perf_counter() - t, audio


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    c = corpus(a.out / f"corpus-{a.files}", a.files)
    files = wav_list(c)
    audio = sum(sf.info(f).duration for f in files)
    flist = a.out / "files.txt"
    flist.write_text("\n".join(files) + "\n")
    print(f"corpus: {len(files)} files, {audio / 3600:.3f} h of audio, cores: {os.cpu_count()}", flush=True)

    res: dict[str, list[float]] = {k: [] for k in ("bare", "librosa", "extract_api", "extract_wds_api", "bare_process", "extract_cli")}
    bare_loop(files[:20]), librosa_loop(files[:20])  # warm-up (imports, caches)
    for r in range(a.rounds):
        res["bare"].append(bare_loop(files))
        res["extract_api"].append(api_extract(c, a.out / "store-api"))
        res["librosa"].append(librosa_loop(files))
        res["extract_wds_api"].append(api_extract(c, a.out / "store-wds", "webdataset"))
        res["bare_process"].append(process_peak_rss([sys.executable, "-c", BARE, str(flist)])[0])
        res["extract_cli"].append(cli_extract(c, c / "multi-task-setup", a.out / "store-cli")[0])
        print(f"round {r + 1}: " + ", ".join(f"{k} {audio / v[-1]:,.0f}x" for k, v in res.items()), flush=True)
    med = {k: statistics.median(v) for k, v in res.items()}
    speed = {k: audio / v for k, v in med.items()}

    small = subset(c, a.out / "setup-small", 0.1)
    _, rss_small = cli_extract(c, small, a.out / "store-small")
    _, rss_big = cli_extract(c, c / "multi-task-setup", a.out / "store-big")
    small_files = sum(len((small / t / n).read_text().splitlines()) - 1 for t in TASKS for n in ("train.csv", "val.csv", "test.csv"))

    from emonet.store import open_store

    info = open_store(a.out / "store-big").info()
    frames = sum(p["frames"] for t in info["tasks"].values() for p in t["partitions"].values())
    disk = sum(p["bytes_on_disk"] for t in info["tasks"].values() for p in t["partitions"].values())
    ratio = frames * 128 * 4 / disk
    wds_info = open_store(a.out / "store-wds").info()
    wds_disk = sum(p["bytes_on_disk"] for t in wds_info["tasks"].values() for p in t["partitions"].values())
    reads = [read_all(a.out / "store-big") for _ in range(3)]
    read_x = statistics.median(au / w for w, au in reads)
    wds_reads = [read_all(a.out / "store-wds") for _ in range(2)]
    wds_read_x = statistics.median(au / w for w, au in wds_reads)

    summary = {
        "files": len(files), "audio_hours": audio / 3600, "rounds": a.rounds, "x_real_time": speed,
        "extract_api_vs_bare": speed["extract_api"] / speed["bare"],
        "extract_api_vs_librosa": speed["extract_api"] / speed["librosa"],
        "extract_cli_vs_bare_process": speed["extract_cli"] / speed["bare_process"],
        "peak_rss_mb": {f"{small_files} files": rss_small / 1e6, f"{len(files)} files": rss_big / 1e6},
        "store_ratio_vs_float32": ratio, "wds_ratio_vs_float32": frames * 128 * 4 / wds_disk,
        "read_x_real_time": read_x, "wds_read_x_real_time": wds_read_x,
    }
    (a.out / "extract.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
