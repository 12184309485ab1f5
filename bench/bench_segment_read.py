"""Reading a segment of a long file: ``load_mono`` with a segment (it seeks) against
decoding the whole file and slicing.

    python bench/bench_segment_read.py [--minutes 10] [--rounds 20]

Writes (once, under bench/out/) a ``--minutes`` long 16 kHz mono PCM16 wav (read by the
standard library's wave module), a 44.1 kHz stereo PCM24 wav and a 16 kHz FLAC (both
read by soundfile), then times, per file, ``load_mono(path, 16000, (300, 303))`` (a 3 s
segment in the middle, resampled to 16 kHz where the file is not) and
``load_mono(path, 16000)`` (the whole file). Prints ms per read, median of the rounds,
and checks that soundfile's seek gives exactly the slice of the whole decode (the tests
check ``load_mono``'s segments against cut wavs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emonet.data.audio import load_mono  # noqa: E402
from emonet.data.segments import sample_range  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def _files(minutes: float) -> list[tuple[Path, int]]:
    OUT.mkdir(exist_ok=True)
    spec = [
        ("long16.wav", 16000, 1, "PCM_16"),
        ("long44st24.wav", 44100, 2, "PCM_24"),
        ("long16.flac", 16000, 1, "PCM_16"),
    ]
    out = []
    for name, rate, channels, subtype in spec:
        path = OUT / f"{minutes:g}min-{name}"
        if not path.is_file():
            rng = np.random.default_rng(0)
            x = (0.1 * rng.standard_normal((int(minutes * 60 * rate), channels))).astype(np.float32)
            sf.write(path, x, rate, subtype=subtype)
        out.append((path, rate))
    return out


def _ms(fn, rounds: int) -> float:
    fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    segment = (300.0, 303.0) if args.minutes * 60 >= 303 else (1.0, 4.0)
    print(
        f"segment {segment[0]:g}-{segment[1]:g} s of {args.minutes:g} min files; ms per read, median of {args.rounds}"
    )
    print("| file | segment | whole file | whole / segment |")
    print("| --- | ---: | ---: | ---: |")
    for path, rate in _files(args.minutes):
        seg = _ms(lambda p=path: load_mono(p, 16000, segment), args.rounds)
        whole = _ms(lambda p=path: load_mono(p, 16000), max(3, args.rounds // 5))
        first, stop = sample_range(segment, rate)
        data, _ = sf.read(path, dtype="float32", always_2d=True, start=first, stop=stop)
        full, _ = sf.read(path, dtype="float32", always_2d=True)
        assert np.array_equal(data, full[first:stop])
        print(f"| {path.name} ({path.stat().st_size / 1e6:.0f} MB) | {seg:.2f} | {whole:.1f} | {whole / seg:,.0f}x |")


if __name__ == "__main__":
    main()
