"""Which audio files a prediction runs on: files, folders (recursively) and csvs with a
``file`` column, in the order given, each file once."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from emonet.errors import InputError

# What soundfile (libsndfile) decodes; other files in a folder are not audio and are passed over.
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64"})


def _csv_files(path: Path, data_path: Path | None) -> list[Path]:
    """The ``file`` column of a csv, relative to ``data_path`` (default: the csv's folder)."""
    base = data_path if data_path is not None else path.parent
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip().lower() for f in reader.fieldnames or []]
            if "file" not in fields:
                raise InputError(f"{path}: no 'file' column (header: {','.join(reader.fieldnames or [])}); add one")
            names = reader.fieldnames or []
            key = names[fields.index("file")]
            bounds = [names[fields.index(c)] for c in ("start", "end") if c in fields]
            out = []
            for line, row in enumerate(reader, start=2):
                if any((row.get(c) or "").strip() for c in bounds):  # a segment: never silently the whole file
                    raise InputError(
                        f"{path}, row {line}: names a segment (start/end); predict scores whole files: extract the "
                        "csv ('emonet extract') and score it with 'emonet evaluate', or list whole files"
                    )
                if (row.get(key) or "").strip():
                    out.append(base / row[key].strip())
            return out
    except UnicodeDecodeError:
        raise InputError(f"{path}: is not UTF-8 text; save the csv as UTF-8") from None


def collect_inputs(inputs: Iterable[str | Path], data_path: str | Path | None = None) -> list[Path]:
    """Audio files named by ``inputs``: audio files as they are, folders searched recursively
    for audio (sorted), csvs read for their ``file`` column (paths relative to ``data_path``,
    default the csv's folder).

    Returns:
        The files in order of appearance, duplicates dropped.

    Raises:
        InputError: an input that does not exist, a folder without audio, a csv without a
            ``file`` column.
    """
    base = Path(data_path) if data_path is not None else None
    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            if not found:
                raise InputError(
                    f"{path}: no audio files in this folder (looked for {', '.join(sorted(AUDIO_SUFFIXES))})"
                )
            out += found
        elif path.suffix.lower() == ".csv" and path.is_file():
            out += _csv_files(path, base)
        elif path.is_file() or path.suffix.lower() in AUDIO_SUFFIXES:
            out.append(path)  # a missing audio file is reported when it is read (or skipped)
        else:
            raise InputError(f"{path}: not found; name audio files, folders of audio or a csv with a 'file' column")
    seen: set[Path] = set()
    unique = []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique
