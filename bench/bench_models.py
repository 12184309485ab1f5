"""Forward+backward throughput of the default EmoNet cnn on 4 s windows (CPU, and GPU if any).

    python bench/bench_models.py                 # CPU: fp32 contiguous vs channels_last
    python bench/bench_models.py --warmup 2 --repeats 9 --markdown --ablations
    python bench/bench_models.py --bn-only --repeats 15 --markdown  # masked vs plain BatchNorm

Batch [16, 126 frames, 128 mels] = 4 s at 16 kHz, hop 512 (center=True). Each timed step is
zero_grad + forward (train mode) + cross-entropy + backward. Variants are interleaved in every
repeat (so drifting CPU clocks hit all alike) after warm-up steps; the median (samples/s =
batch / median) and the minimum are reported. On a CUDA machine it also times bf16 autocast
and torch.compile against fp32 eager.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from emonet.models import ModelConfig, build_model, describe_model  # noqa: E402

N_FRAMES, N_MELS, N_CLASSES = 126, 128, 7


def make_step(model, x, lengths, y, device, autocast_dtype=None):
    def step() -> None:
        model.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits = model(x, lengths, "task")
        F.cross_entropy(logits.float(), y).backward()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def _two_conv_parallel(self, x, task):
    """The parallel unit written literally: conv3x3(x) + conv1x1(drop(x)), always two convolutions."""
    return self.conv(x) + F.conv2d(self.drop(x), self.adapter[task].weight, None, self.stride)


def _plain_bn_forward(self, x, mask=None):
    """torch's BatchNorm over every position, padding included (what the model did before the masked BatchNorm)."""
    return torch.nn.BatchNorm2d.forward(self, x)


def _aten_dropout_forward(self, x):
    return F.dropout(x, self.p, self.training)


def patched(step, cls, name, replacement):
    """Run ``step`` with ``cls.name`` replaced (ablations of the model's implementation choices)."""

    def run() -> None:
        original = getattr(cls, name)
        setattr(cls, name, replacement)
        try:
            step()
        finally:
            setattr(cls, name, original)

    return run


def ablations(device: torch.device, batch: int):
    """Default model with one implementation choice undone: the parallel adapter as a second
    conv (full batch, contiguous, compared with the first row), and plain BatchNorm instead of
    the masked one (padded batch, channels_last, compared with the padded channels_last row)."""
    from emonet.models.adapters import ConvUnit
    from emonet.models.dropout import Dropout
    from emonet.models.norm import MaskedBatchNorm2d

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, N_FRAMES, N_MELS, generator=gen).to(device)
    full = torch.full((batch,), N_FRAMES, dtype=torch.long, device=device)
    varied = torch.randint(60, N_FRAMES + 1, (batch,), generator=gen).to(device)
    y = torch.randint(0, N_CLASSES, (batch,), generator=gen).to(device)
    out = []
    for fmt, lengths, label, cls, name, replacement in (
        ("contiguous", full, "full", ConvUnit, "_parallel", _two_conv_parallel),
        ("contiguous", full, "full", Dropout, "forward", _aten_dropout_forward),
        ("channels_last", varied, "padded", MaskedBatchNorm2d, "forward", _plain_bn_forward),
    ):
        torch.manual_seed(0)
        model = build_model(ModelConfig(memory_format=fmt), {"task": [f"c{i}" for i in range(N_CLASSES)]})
        step = make_step(model.to(device).train(), x, lengths, y, device)
        what = {"_parallel": "adapter as 2nd conv", "forward": f"{cls.__name__} -> torch"}[name]
        out.append((("attention", label, fmt, f"fp32, {what}"), patched(step, cls, name, replacement)))
    return out


def variants(device: torch.device, batch: int, classifiers: list[str]):
    """(name, step) pairs; each gets its own model built from the same seed.

    ``full``: every item has all 126 frames (training windows). ``padded``: lengths drawn from
    60..126, so every conv unit also applies its length mask (attention top only).
    """
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, N_FRAMES, N_MELS, generator=gen).to(device)
    full = torch.full((batch,), N_FRAMES, dtype=torch.long, device=device)
    varied = torch.randint(60, N_FRAMES + 1, (batch,), generator=gen).to(device)
    y = torch.randint(0, N_CLASSES, (batch,), generator=gen).to(device)
    out = []
    for classifier in classifiers:
        for batch_kind, lengths in (("full", full), ("padded", varied)):
            if batch_kind == "padded" and classifier != classifiers[0]:
                continue
            for fmt in ("contiguous", "channels_last"):
                torch.manual_seed(0)
                cfg = ModelConfig(classifier=classifier, memory_format=fmt)
                model = build_model(cfg, {"task": [f"c{i}" for i in range(N_CLASSES)]}).to(device).train()
                name = (classifier, batch_kind, fmt)
                out.append(((*name, "fp32 eager"), make_step(model, x, lengths, y, device)))
                if device.type == "cuda":
                    out.append(((*name, "bf16 autocast"), make_step(model, x, lengths, y, device, torch.bfloat16)))
                    compiled = torch.compile(model)
                    out.append(((*name, "fp32 compile"), make_step(compiled, x, lengths, y, device)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per variant (median)")
    parser.add_argument("--classifiers", nargs="+", default=["attention", "meanpool"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument(
        "--ablations",
        action="store_true",
        help="also time the default model with the adapter as a separate 1x1 conv, with ATen's "
        "dropout, and with plain (unmasked) BatchNorm on the padded batch",
    )
    parser.add_argument(
        "--bn-only",
        action="store_true",
        help="time only masked vs plain BatchNorm (default model, padded batch, channels_last)",
    )
    args = parser.parse_args()
    device = torch.device(args.device)

    if args.bn_only:
        masked = [
            r
            for r in variants(device, args.batch, ["attention"])
            if r[0][1:] == ("padded", "channels_last", "fp32 eager")
        ]
        runs = masked + ablations(device, args.batch)[-1:]
    else:
        runs = variants(device, args.batch, args.classifiers)
    if args.ablations and not args.bn_only:
        runs += ablations(device, args.batch)
    for _, step in runs:
        for _ in range(args.warmup):
            step()
    times: dict[tuple, list[float]] = {name: [] for name, _ in runs}
    for _ in range(args.repeats):
        for name, step in runs:
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)

    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    )
    print(
        f"# EmoNet cnn forward+backward, batch {args.batch} x {N_FRAMES} frames x {N_MELS} mels, "
        f"torch {torch.__version__}, {device.type} ({where}); median of {args.repeats} after {args.warmup} warm-up"
    )
    base: dict[tuple, float] = {}
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        sps = args.batch / med
        base.setdefault(name[:2], sps)  # relative to the first row of the same top and batch
        rows.append((*name, med * 1e3, min(ts) * 1e3, sps, sps / base[name[:2]]))
    if args.markdown:
        print(
            "| classifier | batch | memory format | precision | ms/step median | ms/step min | samples/s | relative |"
        )
        print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: |")
        for c, b, f, p, ms, lo, sps, rel in rows:
            print(f"| {c} | {b} | {f} | {p} | {ms:.0f} | {lo:.0f} | {sps:.1f} | {rel:.2f}x |")
    else:
        print(
            f"{'classifier':<10} {'batch':<7} {'format':<14} {'precision':<26} {'median ms':>9} {'min ms':>7} "
            f"{'samples/s':>10} {'rel':>6}"
        )
        for c, b, f, p, ms, lo, sps, rel in rows:
            print(f"{c:<10} {b:<7} {f:<14} {p:<26} {ms:9.0f} {lo:7.0f} {sps:10.1f} {rel:5.2f}x")
    for adapter in ("parallel", "series"):
        info = describe_model(build_model(ModelConfig(adapter_type=adapter), {"task": ["a", "b", "c", "d"]}))
        t = info["tasks"]["task"]
        print(
            f"# {adapter}: shared {info['shared']['total']:,} params; per task {t['total']:,} "
            f"(adapters {t['adapters']:,}, BN {t['bn']:,}, attention {t['attention']:,}, head {t['head']:,}); "
            f"task/shared {t['overhead_pct']:.1f}%, adapters/shared convs {t['adapter_pct_of_layers']:.1f}%"
        )


if __name__ == "__main__":
    main()
