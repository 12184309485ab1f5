"""CPU training speed of the default cnn: one full training step, variants side by side.

    python bench/bench_speed.py compare --variants base,mallopt --batch 64 --rounds 5
    python bench/bench_speed.py step --variant base --batch 64 --steps 6     # one process, JSON
    python bench/bench_speed.py profile --batch 64 [--variant base]         # torch.profiler table
    python bench/bench_speed.py flops                                       # FLOP per sample (batch 2)
    python bench/bench_speed.py breakdown --batch 64 --padded               # step time by kind of op
    python bench/bench_speed.py convs --batch 64                            # each conv: fwd, bwd-data, bwd-weights

Every rate is set against this machine's large-GEMM rate measured in the same process
(``--gemm``; torch.mm of 4096 x 4096, same dtype and threads), since the CPU under these
benches changes from one day to the next and only a ratio measured side by side holds.

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

GEMM_N = 4096  # the reference: torch.mm of two GEMM_N x GEMM_N matrices, same dtype and threads
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


def gemm_gflops(dtype_name: str = "fp32", repeats: int = 3) -> float:
    """This machine's large-GEMM rate now: the best of ``repeats`` torch.mm of GEMM_N x GEMM_N
    in ``dtype_name`` with this process's threads (the reference a step's rate is compared to)."""
    import torch

    dtype = torch.bfloat16 if dtype_name == "bf16" else torch.float32
    a, b = torch.randn(GEMM_N, GEMM_N).to(dtype), torch.randn(GEMM_N, GEMM_N).to(dtype)
    torch.mm(a, b)  # warm-up: threads, packing buffers
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * GEMM_N**3 / best / 1e9


def run_steps(args) -> dict:
    import torch

    opts = _variant_setup(args.variant)
    gemm_dtype = "bf16" if opts["bf16"] else "fp32"
    gemm_before = gemm_gflops(gemm_dtype) if args.gemm else None
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
    gemm = max(gemm_before, gemm_gflops(gemm_dtype)) if args.gemm else None
    return {
        "gemm_dtype": gemm_dtype, "gemm_gflops": round(gemm, 1) if gemm else None,
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
            cmd += ["--gemm"]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            results[v].append(res)
            loads.append(os.getloadavg()[0])
            print(json.dumps(res), flush=True)
    gflop = flop_per_sample() / 1e9
    print(f"\nbatch {args.batch}, padded {args.padded}, {args.rounds} rounds x {args.steps} steps; load average "
          f"(1 min) during the run: {min(loads):.2f}-{max(loads):.2f}; {gflop:.2f} GFLOP/sample")  # fmt: skip
    print(
        "| variant | samples/s (median) | per round | GFLOP/s | GEMM GFLOP/s (dtype) | share of GEMM "
        "| share, fastest step | CPU s/step (user+sys) | minor faults/step |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for v, rs in results.items():
        sps = [r["samples_per_s"] for r in rs]
        med = statistics.median(sps)
        flt = statistics.median(r["minflt_per_step"] for r in rs)
        cpu = statistics.median(r["user_s_per_step"] + r["sys_s_per_step"] for r in rs)
        # each process's step rate against the GEMM rate measured in that same process
        share = statistics.median(r["samples_per_s"] * gflop / r["gemm_gflops"] for r in rs)
        best = statistics.median(args.batch / min(r["step_s"]) * gflop / r["gemm_gflops"] for r in rs)
        gemm = statistics.median(r["gemm_gflops"] for r in rs)
        print(f"| {v} | {med:.2f} | {' / '.join(f'{s:.2f}' for s in sps)} | {med * gflop:.1f} | "
              f"{gemm:.0f} ({rs[0]['gemm_dtype']}) | {share:.0%} | {best:.0%} | {cpu:.2f} | {flt:,.0f} |")  # fmt: skip


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


def _kind(op: str) -> str:
    if op == "aten::convolution_backward":
        return "convolution backward (data + weights)"
    if op in ("aten::mkldnn_convolution", "aten::convolution", "aten::_convolution"):
        return "convolution forward"
    if op in ("aten::mm", "aten::addmm", "aten::bmm", "aten::linear"):
        return "matmul (attention, heads)"
    return "element-wise, reductions, copies, optimiser"


def breakdown(args) -> None:
    """One profiled step's self time grouped by kind of op, against the step's FLOPs at the
    GEMM rate measured in this process: what stands between the step and the GEMM rate."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as tprofile

    opts = _variant_setup(args.variant)
    model, opt, x, lengths, y = build(args.batch, args.padded, opts)
    step = make_step(model, opt, opts)
    for _ in range(args.warmup):
        step(x, lengths, y)
    gemm = gemm_gflops("bf16" if opts["bf16"] else "fp32")
    t = time.perf_counter()
    with tprofile(activities=[ProfilerActivity.CPU]) as prof:
        step(x, lengths, y)
    wall = time.perf_counter() - t
    kinds: dict[str, float] = {}
    for e in prof.key_averages():
        kinds[_kind(e.key)] = kinds.get(_kind(e.key), 0.0) + e.self_cpu_time_total / 1e6
    total = sum(kinds.values())
    ideal = args.batch * flop_per_sample() / 1e9 / gemm
    print(f"batch {args.batch}, padded {args.padded}, variant {args.variant}; GEMM {gemm:.0f} GFLOP/s; "
          f"profiled step {wall:.2f} s (self time {total:.2f} s); the step's FLOPs at the GEMM rate: {ideal:.2f} s "
          f"({ideal / wall:.0%} of the GEMM rate); load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print("| kind of op | self time, s | share of the step |\n| --- | ---: | ---: |")
    for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"| {k} | {v:.3f} | {v / total:.0%} |")


def _pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _conv_shapes(batch: int) -> list[tuple]:
    """(input shape, weight shape, stride, padding, input needs a gradient) of every conv of a
    training forward of the bench's model, in order (hooks on nn.Conv2d and F.conv2d calls)."""
    import torch
    import torch.nn.functional as F

    model, _, x, lengths, _ = build(batch, False, {"memory_format": "channels_last", "plain_bn": False})
    seen, real = [], F.conv2d

    def spy(inp, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        seen.append((tuple(inp.shape), tuple(weight.shape), _pair(stride), _pair(padding), inp.requires_grad))
        return real(inp, weight, bias, stride, padding, dilation, groups)

    F.conv2d = torch.conv2d = spy
    try:
        model(x, lengths, "t")
    finally:
        F.conv2d = torch.conv2d = real
    return seen


def convs(args) -> None:
    """Each conv of a training step alone, channels_last: forward, backward-data and
    backward-weights GFLOP/s (best of 3), against the GEMM rate in this process."""
    import torch

    from emonet.utils.allocator import keep_large_buffers

    keep_large_buffers()  # as the trainer does: without it, every fresh output faults its pages in
    gemm = gemm_gflops("fp32")
    print(f"GEMM {gemm:.0f} GFLOP/s (fp32, {torch.get_num_threads()} threads); load average {os.getloadavg()[0]:.2f}")
    print("| input | weight | stride | fwd GFLOP/s | bwd-data | bwd-weights | fwd ms | bwd-data ms | bwd-weights ms |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for xs, ws, stride, pad, needs_grad in _conv_shapes(args.batch):
        flop, best = _conv_times(xs, ws, stride, pad)
        data = f"{flop / best['data'] / 1e9:.0f}" if needs_grad else "(none)"
        print(f"| {list(xs)} | {list(ws)} | {stride[0]} | {flop / best['fwd'] / 1e9:.0f} | {data} | "
              f"{flop / best['weights'] / 1e9:.0f} | {best['fwd'] * 1e3:.1f} | "
              f"{best['data'] * 1e3 if needs_grad else 0:.1f} | {best['weights'] * 1e3:.1f} |")  # fmt: skip


def _conv_times(xs: tuple, ws: tuple, stride: tuple, pad: tuple) -> tuple[float, dict]:
    """FLOPs of one conv and its best-of-3 seconds for forward, backward-data, backward-weights."""
    import torch

    cl = torch.channels_last
    x, w = torch.randn(xs).contiguous(memory_format=cl), torch.randn(ws).contiguous(memory_format=cl)
    out = torch.nn.functional.conv2d(x, w, None, stride, pad)
    g = torch.randn_like(out)
    flop = 2 * out.numel() * ws[1] * ws[2] * ws[3]

    def bwd(mask):
        return torch.ops.aten.convolution_backward(g, x, w, None, stride, pad, [1, 1], False, [0, 0], 1, mask)

    fns = {"fwd": lambda: torch.nn.functional.conv2d(x, w, None, stride, pad),
           "data": lambda: bwd((True, False, False)), "weights": lambda: bwd((False, True, False))}  # fmt: skip
    return flop, {k: min(_timed(f) for _ in range(3)) for k, f in fns.items()}


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    for name in ("step", "compare", "profile", "breakdown", "convs"):
        p = sub.add_parser(name)
        p.add_argument("--batch", type=int, default=64)
        p.add_argument("--steps", type=int, default=5)
        p.add_argument("--warmup", type=int, default=2)
        p.add_argument("--padded", action="store_true")
        p.add_argument("--gemm", action="store_true", help="measure the GEMM rate before and after the steps")
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
    elif args.what == "breakdown":
        breakdown(args)
    elif args.what == "convs":
        convs(args)
    else:
        print(json.dumps({"gflop_per_sample": round(flop_per_sample() / 1e9, 3)}))


if __name__ == "__main__":
    main()
