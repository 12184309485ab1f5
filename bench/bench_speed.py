"""CPU training speed of the default cnn: one full training step, variants side by side.

    python bench/bench_speed.py compare --variants base,mallopt --batch 64 --rounds 5
    python bench/bench_speed.py step --variant base --batch 64 --steps 6     # one process, JSON
    python bench/bench_speed.py profile --batch 64 [--variant base]         # torch.profiler table
    python bench/bench_speed.py flops                                       # FLOP per sample (batch 2)

A step is forward, cross-entropy, backward and SGD momentum 0.9 of ``ModelConfig()`` with one
4-class task on random [batch, 126, 128] windows; ``--padded`` gives every 5th item a random
shorter length (then every BatchNorm takes the masked path, as in real batches of short clips).
``compare`` runs every variant in its own fresh process, rounds interleaved (a, b, a, b, ...),
and prints the medians, the load average and the minor page faults per step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PEAK_GFLOPS = 150.0  # 2 cores x 2 FMA x 8 lanes x 2 x ~2.45 GHz
FRAMES, MELS, CLASSES = 126, 128, 4


def _variant_setup(variant: str) -> dict:
    """Apply a variant's process-wide settings; returns options for the step."""
    import torch

    opts = {"compile": False, "bf16": False, "memory_format": "channels_last", "plain_bn": False, "threads": None}
    for part in variant.split("+"):
        if part == "base":
            continue
        elif part == "mallopt":
            from emonet.utils.allocator import keep_large_buffers

            assert keep_large_buffers()
        elif part == "contig":
            opts["memory_format"] = "contiguous"
        elif part == "compile":
            opts["compile"] = True
        elif part == "bf16":
            opts["bf16"] = True
        elif part == "oldbn":
            _use_literal_masked_bn()
        elif part == "plainbn":
            opts["plain_bn"] = True
        elif part.startswith("t"):
            opts["threads"] = int(part[1:])
        else:
            raise SystemExit(f"unknown variant part {part!r}")
    if opts["threads"]:
        torch.set_num_threads(opts["threads"])
    return opts


def _use_literal_masked_bn() -> None:
    """The masked BatchNorm as it was before the fused backward: the literal autograd form, the output
    masked afterwards (by the conv unit, then) with an in-place multiply."""
    import torch

    from emonet.models.norm import MaskedBatchNorm2d

    def forward(self, x, mask=None):
        if mask is None:
            return torch.nn.BatchNorm2d.forward(self, x)
        if not self.training:
            return torch.nn.BatchNorm2d.forward(self, x).mul_(mask.to(x.dtype))
        xf, m, dims = x.float(), mask.to(x.dtype), (0, 2, 3)
        count = m.expand(x.shape[0], 1, *x.shape[2:]).sum()
        masked = xf * m
        mean = masked.sum(dims) / count
        var = ((masked * xf).sum(dims) / count - mean.square()).clamp(min=0.0)
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            unbiased = var * (count / (count - 1).clamp(min=1))
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_var.lerp_(unbiased.detach(), self.momentum)
        scale = torch.rsqrt(var + self.eps) * self.weight
        shift = self.bias - mean * scale
        return (xf * scale[None, :, None, None] + shift[None, :, None, None]).to(x.dtype).mul_(m)

    MaskedBatchNorm2d.forward = forward


def build(batch: int, padded: bool, opts: dict, seed: int = 0):
    import torch

    from emonet.models import ModelConfig, build_model

    torch.manual_seed(seed)
    model = build_model(ModelConfig(memory_format=opts["memory_format"]), {"t": ["a", "b", "c", "d"]})
    if opts["plain_bn"]:
        from emonet.models.norm import MaskedBatchNorm2d

        MaskedBatchNorm2d.forward = lambda self, x, mask=None: torch.nn.BatchNorm2d.forward(self, x)
    model.train()
    x = torch.randn(batch, FRAMES, MELS)
    lengths = torch.full((batch,), FRAMES, dtype=torch.long)
    if padded:
        lengths[::5] = torch.randint(40, FRAMES, (len(lengths[::5]),))
    y = torch.randint(0, CLASSES, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return model, opt, x, lengths, y


def make_step(model, opt, opts):
    import torch
    import torch.nn.functional as F

    fwd = torch.compile(model) if opts["compile"] else model

    def step(x, lengths, y):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=opts["bf16"]):
            logits = fwd(x, lengths, "t")
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        opt.step()
        return loss

    return step


def run_steps(args) -> dict:
    import torch

    opts = _variant_setup(args.variant)
    model, opt, x, lengths, y = build(args.batch, args.padded, opts)
    step = make_step(model, opt, opts)
    t0 = time.perf_counter()
    for _ in range(args.warmup):
        step(x, lengths, y)
    warm_s = time.perf_counter() - t0
    times, r0, c0 = [], resource.getrusage(resource.RUSAGE_SELF), os.times()
    for _ in range(args.steps):
        t = time.perf_counter()
        loss = step(x, lengths, y)
        times.append(time.perf_counter() - t)
    r1, c1 = resource.getrusage(resource.RUSAGE_SELF), os.times()
    med = statistics.median(times)
    return {
        "variant": args.variant, "batch": args.batch, "padded": args.padded, "threads": torch.get_num_threads(),
        "step_s": [round(t, 4) for t in times], "median_s": round(med, 4), "samples_per_s": round(args.batch / med, 2),
        "warmup_s": round(warm_s, 2), "minflt_per_step": round((r1.ru_minflt - r0.ru_minflt) / args.steps),
        "user_s_per_step": round((c1.user - c0.user) / args.steps, 3),
        "sys_s_per_step": round((c1.system - c0.system) / args.steps, 3), "loss": float(loss.detach()),
    }  # fmt: skip


def compare(args) -> None:
    variants = args.variants.split(",")
    results: dict[str, list[dict]] = {v: [] for v in variants}
    loads = [os.getloadavg()[0]]
    for r in range(args.rounds):
        for v in variants if r % 2 == 0 else variants[::-1]:
            cmd = [sys.executable, __file__, "step", "--variant", v, "--batch", str(args.batch),
                   "--steps", str(args.steps), "--warmup", str(args.warmup)]  # fmt: skip
            cmd += ["--padded"] if args.padded else []
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            results[v].append(res)
            loads.append(os.getloadavg()[0])
            print(json.dumps(res), flush=True)
    gflop = flop_per_sample() / 1e9
    print(f"\nbatch {args.batch}, padded {args.padded}, {args.rounds} rounds x {args.steps} steps; load average "
          f"(1 min) during the run: {min(loads):.2f}-{max(loads):.2f}; {gflop:.2f} GFLOP/sample")  # fmt: skip
    print(
        "| variant | samples/s (median) | per round | GFLOP/s | share of peak | CPU s/step (user+sys) "
        "| minor faults/step | samples/s, fastest step (median) |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for v, rs in results.items():
        sps = [r["samples_per_s"] for r in rs]
        med = statistics.median(sps)
        flt = statistics.median(r["minflt_per_step"] for r in rs)
        cpu = statistics.median(r["user_s_per_step"] + r["sys_s_per_step"] for r in rs)
        best = statistics.median(args.batch / min(r["step_s"]) for r in rs)
        print(f"| {v} | {med:.2f} | {' / '.join(f'{s:.2f}' for s in sps)} | {med * gflop:.1f} | "
              f"{med * gflop / PEAK_GFLOPS:.0%} | {cpu:.2f} | {flt:,.0f} | {best:.2f} |")  # fmt: skip


def flop_per_sample(batch: int = 2) -> float:
    """Forward + backward FLOPs of one training step per sample (FlopCounterMode, batch 2)."""
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    opts = {"memory_format": "channels_last", "plain_bn": False}
    model, _, x, lengths, y = build(batch, False, opts)
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(x, lengths, "t"), y).backward()
    return counter.get_total_flops() / batch


def profile(args) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as tprofile

    opts = _variant_setup(args.variant)
    model, opt, x, lengths, y = build(args.batch, args.padded, opts)
    step = make_step(model, opt, opts)
    for _ in range(args.warmup):
        step(x, lengths, y)
    with tprofile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
        for _ in range(args.steps):
            step(x, lengths, y)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    for name in ("step", "compare", "profile"):
        p = sub.add_parser(name)
        p.add_argument("--batch", type=int, default=64)
        p.add_argument("--steps", type=int, default=5)
        p.add_argument("--warmup", type=int, default=2)
        p.add_argument("--padded", action="store_true")
        if name == "compare":
            p.add_argument("--variants", default="base,mallopt")
            p.add_argument("--rounds", type=int, default=5)
        else:
            p.add_argument("--variant", default="base")
        if name == "profile":
            p.add_argument("--rows", type=int, default=30)
    sub.add_parser("flops")
    args = ap.parse_args()
    if args.what == "step":
        print(json.dumps(run_steps(args)))
    elif args.what == "compare":
        compare(args)
    elif args.what == "profile":
        profile(args)
    else:
        print(json.dumps({"gflop_per_sample": round(flop_per_sample() / 1e9, 3)}))


if __name__ == "__main__":
    main()
