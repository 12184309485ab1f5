"""Cost of the strided parallel adapter's two forms, in a training step of one conv unit.

    PYTHONPATH=. python bench/bench_strided_adapter.py --repeats 15

The first unit of a stage's first block has stride 2; with input dropout (`-do A,B`, A > 0)
its adapter runs as its own 1x1 convolution. Before: a stride-2 1x1 conv of the dropped
input (torch 2.11's oneDNN backward of it crashes or hangs on channels_last input at some
shapes). Now: a stride-1 1x1 conv of the strided slice, the same function. Both variants are
timed in alternation (median ms per forward+backward of the unit), on channels_last float32,
at the default network's first strided unit (f=32: 32 -> 64 channels) on a 4 s batch.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from emonet.models.adapters import ConvUnit


def _unit(in_ch: int, out_ch: int) -> ConvUnit:
    unit = ConvUnit(in_ch, out_ch, 2, "parallel", dropout=0.2)
    unit.bn.add("a")
    unit.adapter.add("a")
    torch.nn.init.normal_(unit.adapter["a"].weight, std=0.05)
    return unit.to(memory_format=torch.channels_last).train()


def _strided_form(unit: ConvUnit, x: torch.Tensor) -> torch.Tensor:
    """The form before: the adapter as a stride-2 1x1 conv of the dropped input."""
    y = unit.conv(x) + F.conv2d(unit.drop(x), unit.adapter["a"].weight, None, 2)
    return unit.bn["a"](y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--channels", type=int, nargs=2, default=[32, 64])
    parser.add_argument("--frames", type=int, default=126)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    unit = _unit(*args.channels)
    x = torch.randn(args.batch, args.channels[0], 128, args.frames).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    variants = {"stride-2 1x1 (before)": lambda: _strided_form(unit, x), "slice + 1x1 (now)": lambda: unit(x, "a")}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.repeats + 2):
        for name, forward in variants.items():
            start = time.perf_counter()
            forward().square().mean().backward()
            if r >= 2:  # two warm-up rounds
                times[name].append(time.perf_counter() - start)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}, {platform.python_version()}")
    print(f"batch {args.batch}, {args.channels[0]} -> {args.channels[1]} channels, 128 mels x {args.frames} frames")
    for name, t in times.items():
        print(f"{name:24s} median {1000 * statistics.median(t):8.1f} ms   min {1000 * min(t):8.1f} ms")


if __name__ == "__main__":
    main()
