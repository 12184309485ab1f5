"""Benchmark of `emonet predict`: files/s and real-time factor on the CPU for the
default cnn (ModelConfig() defaults, 128 mels) on the demo corpus, the share of time in decoding
and features vs the network, and the size of a task pack against the full model.

    python bench/bench_predict.py [--files-per-task 120] [--batch-size 16] [--repeats 2] [--threads 2]

The corpus (`emonet demo-data` defaults: 120 files of 1-3 s per task, 16 kHz) and the
checkpoint are written under bench/out/ (ignored by git) and reused. The model is untrained
(speed does not depend on the weights) and normalises with mean 0 / std 1.
Equivalent command line: emonet predict --model bench/out/predict-cnn.safetensors bench/out/predict-corpus-120/data
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

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


def predict_speed(ckpt: Path, files: list[Path], tasks: list[str] | None, batch_size: int, repeats: int) -> dict:
    """The fastest of ``repeats`` passes over ``files`` (the first also warms the caches)."""
    from emonet.inference.predict import Predictor

    predictor = Predictor(ckpt, batch_size=batch_size)
    best = None
    for _ in range(repeats):
        r = predictor.predict(files, tasks)
        if best is None or r.elapsed < best.elapsed:
            best = r
    return {
        "files": best.files,
        "audio_s": best.audio_seconds,
        "files_per_s": best.files / best.elapsed,
        "rtf": best.elapsed / best.audio_seconds,  # seconds of compute per second of audio
        "x_real_time": best.audio_seconds / best.elapsed,
        "features_share": best.feature_seconds / best.elapsed,
        "network_share": best.network_seconds / best.elapsed,
        "seconds": best.elapsed,
    }


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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from emonet.inference.inputs import collect_inputs

    files = collect_inputs([corpus(args.files_per_task) / "data"])
    ckpt = default_checkpoint()
    print(f"{len(files)} files, default cnn, batch {args.batch_size}, {args.threads} torch threads")
    for label, tasks in (("all 3 tasks", None), ("1 task (acted)", ["acted"])):
        s = predict_speed(ckpt, files, tasks, args.batch_size, args.repeats)
        print(
            f"{label}: {s['files_per_s']:.1f} files/s, RTF {s['rtf']:.4f} ({s['x_real_time']:.0f}x real time), "
            f"{s['audio_s']:.0f} s of audio in {s['seconds']:.2f} s; decoding+features {s['features_share']:.0%}, "
            f"network {s['network_share']:.0%}"
        )
    p = pack_sizes(ckpt)
    print(
        f"task pack (acted): {p['pack_bytes'] / 1e6:.3f} MB of a {p['model_bytes'] / 1e6:.3f} MB model "
        f"({p['pack_bytes'] / p['model_bytes']:.1%})"
    )


if __name__ == "__main__":
    main()
