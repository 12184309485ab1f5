"""Rich tables for stores and extraction reports."""

from __future__ import annotations

from rich.table import Table


def _mb(n: int) -> str:
    return f"{n / 1e6:,.2f}"


def store_summary(path) -> dict:
    """The store's ``info()`` (its ``--codec`` included where its root record names one)."""
    from emonet.store import open_store  # lazy: keeps torch and zarr off 'emonet --help'

    return open_store(path).info()


def store_table(info: dict, statuses: dict | None = None) -> Table:
    """One row per task and partition: files, hours, frames, classes with counts, bytes
    on disk and compression ratio against float32."""
    codec = f", codec {info['codec']}" if info.get("codec") else ""
    t = Table(
        title=f"feature store {info['path']} ({info['backend']}{codec}, features {info['feature_hash']})",
        title_justify="left",
    )
    for col, kw in (
        ("task", {}),
        ("partition", {}),
        ("files", {"justify": "right"}),
        ("hours", {"justify": "right"}),
        ("frames", {"justify": "right"}),
        ("classes (count)", {"overflow": "fold"}),
        ("MB", {"justify": "right"}),
        ("vs f32", {"justify": "right"}),
    ):
        t.add_column(col, **kw)
    if statuses:
        t.add_column("this run")
    for task, tinfo in info["tasks"].items():
        for part, p in tinfo["partitions"].items():
            labels = ", ".join(f"{k} {v}" for k, v in p["labels"].items()) or "unlabelled"
            extra = []
            if p.get("skipped"):
                extra.append(f"{len(p['skipped'])} skipped")
            if p.get("converted"):
                extra.append(f"{p['converted']} converted")
            row = [
                task,
                part,
                f"{p['files']:,}",
                f"{p['seconds'] / 3600:,.3f}",
                f"{p['frames']:,}",
                labels,
                _mb(p["bytes_on_disk"]),
                f"{p['compression_ratio']:.2f}" if p["compression_ratio"] else "-",
            ]
            if statuses:
                row.append("; ".join([statuses.get((task, part), "")] + extra))
            t.add_row(*row)
    return t


def skipped_lines(skipped: list[dict]) -> str:
    """One line per skipped row; each reason already names the csv, row and file."""
    return "\n".join(
        [f"skipped {len(skipped)} bad row(s) (--skip-bad; recorded in the store):"]
        + [f"  - {s['reason']}" for s in skipped]
    )
