"""Reading a partition csv: emonet's reader (the csv module) against pandas.

    python bench/bench_csv_read.py [--rows 100000] [--rounds 3]

Writes (once, under bench/out/) a ``file,label`` csv of ``--rows`` rows, then in every
round times, one after the other:

* ``emonet``: ``emonet.data.partitions.read_partition_csv`` as it is: the csv module,
  then one pass over the rows that checks each and builds the ``Row`` list;
* ``pandas``: the same result (rows, line numbers, problems; checked equal to emonet's)
  from ``pandas.read_csv`` (C engine, every cell a string, blank lines kept so that a row's
  index gives its line number) and vectorised checks (strip, empty cells, duplicates),
  the ``Row`` list built from the columns;
* ``csv parse`` and ``pandas parse``: the parse alone (text to cells), for scale.

Prints ms per csv, median of the rounds.
"""

from __future__ import annotations

import argparse
import io
import posixpath
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OUT = Path(__file__).resolve().parent / "out"


def make_csv(rows: int) -> Path:
    path = OUT / f"partition-{rows}.csv"
    if not path.is_file():
        OUT.mkdir(parents=True, exist_ok=True)
        labels = ("angry", "happy", "neutral", "sad")
        body = "".join(f"spk{i % 97:02d}/session{i % 7}/utt_{i:07d}.wav,{labels[i % 4]}\n" for i in range(rows))
        path.write_text("file,label\n" + body)
    return path


def pandas_read(path: Path, partition: str):
    """A pandas reader of one csv with read_partition_csv's result, for the rows of a
    csv whose header is 'file,label' (the csv-level checks are the same code either way)."""
    import hashlib

    import pandas as pd

    from emonet.data.partitions import PartitionCsv, Row
    from emonet.errors import InputError

    raw = path.read_bytes()
    df = pd.read_csv(
        io.BytesIO(raw), header=None, dtype=str, na_filter=False, skip_blank_lines=False, encoding="utf-8-sig"
    )
    cols = [c.strip().lower() for c in df.iloc[0]]
    fi, li = cols.index("file"), cols.index("label")
    body = df.iloc[1:]
    line = body.index.to_numpy() + 1
    key, label = body[fi].str.strip(), body[li].str.strip()
    blank = (key == "") & (label == "")
    norm = key.map(posixpath.normpath)
    bad = (key == "") | (label == "")
    dup = norm.duplicated() & ~bad
    ok = ~(blank | bad | dup)
    rows = [Row(line=int(n), file=k, label=v) for n, k, v in zip(line[ok], key[ok], label[ok], strict=True)]
    problems = []
    if (bad & ~blank).any() or dup.any():
        first = dict(zip(norm[ok], line[ok], strict=True))
        sel = ~ok & ~blank
        for n, k, v, m in zip(line[sel], key[sel], label[sel], norm[sel], strict=True):
            msg = "empty file name" if not k else f"empty label for '{k}'" if not v else f"duplicates row {first[m]}"
            problems.append(InputError(f"{path} row {n}: {msg}", source=str(path), row=int(n), file=k))
    return PartitionCsv(partition, path, hashlib.sha256(raw).hexdigest(), True, rows, problems)


def variants(path: Path) -> dict:
    import csv

    import pandas as pd

    from emonet.data.partitions import read_partition_csv

    return {
        "emonet": lambda: read_partition_csv(path, "train"),
        "pandas": lambda: pandas_read(path, "train"),
        "csv parse": lambda: list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline=""))),
        "pandas parse": lambda: pd.read_csv(path, dtype=str, na_filter=False, skip_blank_lines=False),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    path = make_csv(a.rows)
    runs = variants(path)
    ours, theirs = runs["emonet"](), runs["pandas"]()  # warm-up, and the two must agree
    assert ours.rows == theirs.rows and len(ours.rows) == a.rows and ours.sha256 == theirs.sha256
    times: dict[str, list[float]] = {v: [] for v in runs}
    for r in range(a.rounds):
        for v, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[v].append((time.perf_counter() - t) * 1e3)
        print(f"round {r + 1}: " + ", ".join(f"{v} {t[-1]:.0f} ms" for v, t in times.items()), flush=True)
    print(f"\n{path.name}: {a.rows:,} rows, ms per csv, median of {a.rounds} rounds")
    for v, t in times.items():
        print(f"| {v} | {statistics.median(t):.0f} |")


if __name__ == "__main__":
    main()
