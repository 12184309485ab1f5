"""Memory of `emonet extract` and each worker over time, to show it levels off.

    .venv/bin/python bench/memory_trace.py bench/out/setup-10x   # after bench_extract.py

Prints, every 1.5 s, the private memory (USS) of the main process and of each forked
worker: shared pages (torch's libraries) are left out, so growth shows plainly."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
setup = Path(sys.argv[1])
corpus = ROOT / "bench" / "out" / "corpus-3000"
store = ROOT / "bench" / "out" / "store-trace"
shutil.rmtree(store, ignore_errors=True)
exe = str(Path(sys.executable).with_name("emonet"))
proc = subprocess.Popen(
    [
        exe,
        "extract",
        "--store",
        str(store),
        "-dp",
        str(corpus / "data"),
        "--multi-task-setup",
        str(setup),
        "--tasks",
        "acted",
        "arousal",
        "valence",
        "-q",
    ],
    stdout=subprocess.DEVNULL,
)
root, t0, last = psutil.Process(proc.pid), time.time(), 0.0
while proc.poll() is None:
    try:
        if time.time() - last > 1.5:
            last = time.time()
            kids = root.children()
            row = " ".join(f"worker{i} {k.memory_full_info().uss / 1e6:4.0f} MB" for i, k in enumerate(kids))
            print(
                f"{time.time() - t0:5.1f} s  main {root.memory_full_info().uss / 1e6:4.0f} MB  {row}",
                flush=True,
            )
    except psutil.NoSuchProcess:
        pass
    time.sleep(0.05)
