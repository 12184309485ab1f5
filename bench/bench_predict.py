"""Benchmark of `emonet predict`: files/s and real-time factor on the CPU for the
default cnn (ModelConfig() defaults, 128 mels) on the demo corpus, the share of time in decoding
and features vs the network, and the size of a task pack against the full model.

fp32 and, side by side in alternating rounds of the same process, bf16 where the CPU has
native bf16 (else a line says why not); all three tasks of the model on the same files, and one.

    python bench/bench_predict.py [--files-per-task 120] [--batch-size 16] [--repeats 2] [--threads 2] [--rounds 3]

The corpus (`emonet demo-data` defaults: 120 files of 1-3 s per task, 16 kHz) and the
checkpoint are written under bench/out/ (ignored by git) and reused. The model is untrained
(speed does not depend on the weights) and normalises with mean 0 / std 1.
Equivalent command line: emonet predict --model bench/out/predict-cnn.safetensors bench/out/predict-corpus-120/data
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OUT = Path(__file__).resolve().parent / "out"
TASKS = ["acted", "arousal", "valence"]


def corpus(files_per_task: int) -> Path:
    from emonet.data.demo import generate_demo_corpus

    path = OUT / f"predict-corpus-{files_per_task}"
    if not (path / "multi-task-setup").is_dir():
        generate_demo_corpus(path, files_per_task=files_per_task)
    return path


def default_checkpoint() -> Path:
    """The default cnn with the three demo tasks, untrained, with the default feature config."""
    from emonet.data.demo import DEMO_TASKS
    from emonet.data.features import FeatureConfig
    from emonet.models import ModelConfig, build_model, save_checkpoint

    path = OUT / "predict-cnn.safetensors"
    if not path.is_file():
        fc = FeatureConfig()
        torch.manual_seed(0)
        model = build_model(ModelConfig(n_mels=fc.n_mels), {t: sorted(DEMO_TASKS[t]) for t in TASKS})
        stats = {t: {"mean": [0.0] * fc.n_mels, "std": [1.0] * fc.n_mels} for t in TASKS}
        save_checkpoint(path, model, feature_config=fc.to_dict(), norm_stats=stats)
    return path


def predict_speed(
    ckpt: Path,
    files: list[Path],
    tasks: list[str] | None,
    batch_size: int,
    repeats: int,
    precision: str = "fp32",
) -> dict:
    """The fastest of ``repeats`` passes over ``files`` (the first also warms the caches)."""
    from emonet.inference.predict import Predictor

    predictor = Predictor(ckpt, batch_size=batch_size, precision=precision)
    best, cpu = None, 0.0
    for _ in range(repeats):
        c0 = time.process_time()
        r = predictor.predict(files, tasks)
        if best is None or r.elapsed < best.elapsed:
            best, cpu = r, time.process_time() - c0
    return {
        "files": best.files,
        "audio_s": best.audio_seconds,
        "files_per_s": best.files / best.elapsed,
        "rtf": best.elapsed / best.audio_seconds,  # seconds of compute per second of audio
        "x_real_time": best.audio_seconds / best.elapsed,
        "features_share": best.feature_seconds / best.elapsed,
        "network_share": best.network_seconds / best.elapsed,
        "seconds": best.elapsed,
        "files_per_cpu_s": best.files / cpu,  # CPU time of all threads: steadier than wall time on a loaded machine
        "probabilities": [v for p in best.predictions for v in p.probabilities.values()],
    }


def cpu_line() -> str:
    """The CPU as /proc/cpuinfo names it, with the flags that decide the kernels."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        return "CPU: unknown (no /proc/cpuinfo)"
    flags = set(info.get("flags", "").split())
    shown = ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16"))
    return (
        f"CPU: {info.get('model name', '?')}, family {info.get('cpu family', '?')} model {info.get('model', '?')}; "
        f"{shown}; torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()} kernels"
    )


def pack_sizes(ckpt: Path) -> dict:
    from emonet.models import export_task, load_checkpoint

    model, _ = load_checkpoint(ckpt)
    with tempfile.TemporaryDirectory() as tmp:
        pack = export_task(model, "acted", Path(tmp) / "acted.safetensors")
        return {"model_bytes": ckpt.stat().st_size, "pack_bytes": pack.stat().st_size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files-per-task", type=int, default=120)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of the precisions")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from emonet.inference.inputs import collect_inputs
    from emonet.utils.devices import native_bf16_cpu

    files = collect_inputs([corpus(args.files_per_task) / "data"])
    ckpt = default_checkpoint()
    print(cpu_line())
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"{len(files)} files, default cnn, batch {args.batch_size}, {args.threads} torch threads")
    variants = ["fp32"] + (["bf16"] if native_bf16_cpu() else [])
    for label, tasks in (("all 3 tasks", None), ("1 task (acted)", ["acted"])):
        speeds: dict[str, list[float]] = {name: [] for name in variants}
        per_cpu: dict[str, list[float]] = {name: [] for name in variants}
        probs = {}
        for r in range(args.rounds):
            for name in variants:
                s = predict_speed(ckpt, files, tasks, args.batch_size, args.repeats, name)
                speeds[name].append(s["files_per_s"])
                per_cpu[name].append(s["files_per_cpu_s"])
                probs[name] = np.asarray(s["probabilities"])
                print(
                    f"  round {r + 1} {label}, {name}: {s['files_per_s']:.2f} files/s, "
                    f"{s['files_per_cpu_s']:.2f} files per CPU-second, RTF {s['rtf']:.4f}, "
                    f"decoding+features {s['features_share']:.0%}, network {s['network_share']:.0%}",
                    flush=True,
                )
        old = "fp32"
        for name, values in speeds.items():
            ratio = [v / o for v, o in zip(values, speeds[old], strict=True)]
            cpu_ratio = [v / o for v, o in zip(per_cpu[name], per_cpu[old], strict=True)]
            diff = np.abs(probs[name] - probs[old]).max()
            print(
                f"{label}, {name}: median {statistics.median(values):.2f} files/s (vs fp32 per round "
                f"{', '.join(f'{x:.2f}x' for x in ratio)}), median {statistics.median(per_cpu[name]):.2f} files per "
                f"CPU-second (vs fp32 {', '.join(f'{x:.2f}x' for x in cpu_ratio)}); max |p - p_fp32| {diff:.1e}"
            )
    if not native_bf16_cpu():
        print("bf16 not measured: this CPU has no native bf16 (no avx512_bf16 / amx_bf16 flag), so it is emulated")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    p = pack_sizes(ckpt)
    print(
        f"task pack (acted): {p['pack_bytes'] / 1e6:.3f} MB of a {p['model_bytes'] / 1e6:.3f} MB model "
        f"({p['pack_bytes'] / p['model_bytes']:.1%})"
    )


if __name__ == "__main__":
    main()
