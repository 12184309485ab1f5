"""EmoBox's benchmark metadata read as partitions (rows like a csv's), so extraction, segments,
``--skip-bad``, checksums and resume are the csv path's own.

The layout of an EmoBox metadata checkout (``META_ROOT``), per corpus ``D``:

    data/D/label_map.json                  raw label -> class name
    data/D/fold_K/D_train_fold_K.jsonl     one JSON object per line: key, wav (relative to
    data/D/fold_K/D_test_fold_K.jsonl      the user's download folder), emo (the raw label),
    data/D/fold_K/D_valid_fold_K.jsonl     optional; start_time/end_time (seconds) for a part
                                           of a longer recording; speaker where known

Fold ``K`` of ``D`` becomes the task ``D-foldK`` with train, devel and test. Devel is the
valid file where there is one; otherwise 20% of train carved out by speaker (seeded): the
``speaker`` field, else ``--speaker-regex`` on the wav path, else the rule of a known corpus
(:data:`SPEAKER_RULES`); where no speaker can be derived, by utterance, said in one line. How
devel was made (rule, seed, devel speakers) is recorded in the store with the partition."""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from emonet.data.partitions import PartitionCsv, Row, TaskSources, utterance_key
from emonet.data.segments import SegmentError, parse_segment
from emonet.errors import ConfigError, InputError

DEVEL_FRACTION = 0.2  # EmoBox's 80/20 train/valid split where a corpus has no valid file
# speaker of a known corpus from its wav file name (without extension): the groups joined
SPEAKER_RULES = {
    "iemocap": r"^(Ses\d\d)[FM]_.*_([FM])\d+$",  # session and the speaking actor's gender
    "emodb": r"^(\d\d)",  # 03a01Fa: speaker 03
    "cremad": r"^(\d{4})_",  # 1001_DFA_ANG_XX: actor 1001
    "ravdess": r"-(\d\d)$",  # 03-01-05-01-02-01-12: actor 12
}


def datasets(meta_root: Path) -> list[str]:
    """The corpora of an EmoBox checkout: the folders of ``data/`` with a label map or folds."""
    data = Path(meta_root) / "data"
    if not data.is_dir():
        raise ConfigError(f"{meta_root}: no data/ folder; pass the EmoBox metadata checkout as --emobox")
    return sorted(
        d.name for d in data.iterdir() if d.is_dir() and ((d / "label_map.json").is_file() or any(d.glob("fold_*")))
    )


def folds_of(meta_root: Path, dataset: str) -> list[int]:
    """The fold numbers of ``dataset`` (a folder ``fold_K`` with a train file)."""
    folder = Path(meta_root) / "data" / dataset
    found = [int(m[1]) for d in folder.glob("fold_*") if (m := re.fullmatch(r"fold_(\d+)", d.name))]
    return sorted(k for k in found if (folder / f"fold_{k}" / f"{dataset}_train_fold_{k}.jsonl").is_file())


def label_map(meta_root: Path, dataset: str) -> tuple[Path, dict[str, str], str]:
    """(path, raw label -> class name, sha256) of the corpus's label_map.json."""
    path = Path(meta_root) / "data" / dataset / "label_map.json"
    if not path.is_file():
        raise ConfigError(f"{path}: not found; every EmoBox corpus needs its label_map.json")
    raw = path.read_bytes()
    try:
        mapping = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: is not valid JSON ({exc}); restore it from the EmoBox checkout") from None
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise ConfigError(f'{path}: must map each raw label to a class name ({{"ang": "angry", ...}})')
    return path, {str(k): v for k, v in mapping.items()}, hashlib.sha256(raw).hexdigest()


def read_jsonl(path: Path, partition: str, labels: dict[str, str], map_path: Path) -> tuple[PartitionCsv, list]:
    """The rows of one EmoBox jsonl (line numbers as rows, ``emo`` mapped through the label
    map, ``start_time``/``end_time`` as a segment), bad lines among ``problems``; and each
    row's JSON object (for speakers)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: not found; check the EmoBox checkout (--emobox) and the fold")
    raw = path.read_bytes()
    rows, problems, records, seen = [], [], [], {}

    def problem(line: int, message: str, key: str = "") -> None:
        problems.append(InputError(f"{path} row {line}: {message}", source=str(path), row=line, file=key))

    for line, text in enumerate(raw.decode("utf-8-sig", errors="replace").splitlines(), 1):
        if not text.strip():
            continue
        try:
            rec = json.loads(text)
        except json.JSONDecodeError:
            problem(line, "is not a JSON object; fix the line or delete it")
            continue
        wav, emo = (rec.get("wav"), rec.get("emo")) if isinstance(rec, dict) else (None, None)
        if not isinstance(wav, str) or not wav or emo is None:
            problem(line, "needs 'wav' and 'emo'; fix the line or delete it")
            continue
        if str(emo) not in labels:
            known = ", ".join(sorted(labels))
            problem(line, f"label '{emo}' is not in {map_path} (labels: {known}); add it to the map", wav)
            continue
        try:
            segment = _segment(rec)
        except SegmentError as exc:
            problem(line, f"'{wav}': {exc}", wav)
            continue
        key = utterance_key(wav, segment)
        if key in seen:
            problem(line, f"'{key}' duplicates row {seen[key]}; delete one of the two lines", wav)
            continue
        seen[key] = line
        start, end = segment or (None, None)
        rows.append(Row(line=line, file=wav, label=labels[str(emo)], start=start, end=end))
        records.append(rec)
    if not rows and not problems:
        raise InputError(f"{path}: has no utterances; restore it from the EmoBox checkout")
    sha = hashlib.sha256(raw).hexdigest()
    return PartitionCsv(partition, path, sha, labelled=True, rows=rows, problems=problems), records


def _segment(rec: dict):
    start, end = rec.get("start_time"), rec.get("end_time")
    if start is None and end is None:
        return None
    return parse_segment("" if start is None else str(start), "" if end is None else str(end))


def speaker_function(dataset: str, speaker_regex: str | None) -> tuple[str, Callable[[dict], str | None] | None]:
    """(the rule's description, record -> speaker) for ``dataset``: the ``speaker`` field,
    else ``speaker_regex`` on the wav path, else a known corpus's rule; None where none."""
    if speaker_regex:
        try:
            pattern = re.compile(speaker_regex)
        except re.error as exc:
            raise ConfigError(f"--speaker-regex {speaker_regex!r} is not a regular expression ({exc})") from None
        return f"--speaker-regex {speaker_regex}", lambda rec: _match(pattern, rec["wav"])
    if dataset.lower() in SPEAKER_RULES:
        pattern = re.compile(SPEAKER_RULES[dataset.lower()])
        return f"{dataset} file names ({pattern.pattern})", lambda rec: _match(pattern, PurePosixPath(rec["wav"]).stem)
    return "", None


def _match(pattern: re.Pattern, text: str) -> str | None:
    m = pattern.search(text)
    if m is None:
        return None
    return "".join(g for g in m.groups() if g) if m.groups() else m.group(0)


def split_devel(
    train: PartitionCsv, records: list[dict], dataset: str, speaker_regex: str | None, seed: int
) -> tuple[PartitionCsv, PartitionCsv, str | None]:
    """(train, devel, notice): 20% of ``train`` as devel, by speaker where every row has one
    (so no speaker is in both), else by utterance (the notice says why). How: the partitions'
    ``origin['devel_split']``."""
    rule, fn = "'speaker' field", lambda rec: rec.get("speaker")
    if not all(rec.get("speaker") not in (None, "") for rec in records):
        rule, fn = speaker_function(dataset, speaker_regex)
    speakers = [fn(rec) for rec in records] if fn is not None else [None] * len(records)
    missing = next((rec["wav"] for rec, s in zip(records, speakers, strict=True) if not s), None)
    rng = random.Random(seed)
    notice = None
    if fn is not None and missing is None and len(set(speakers)) > 1:
        in_devel, devel_speakers = _speaker_split(speakers, rng)
        record = {"split": "speaker", "rule": rule, "speakers_devel": devel_speakers}
    else:
        why = f"{rule} finds one speaker"
        if fn is None:
            why = f"no speaker rule for {dataset!r}"
        elif missing is not None:
            why = f"{rule} gives no speaker for '{missing}'"
        notice = (
            f"note: {train.path.name}: devel is 20% of train split by utterance, not by speaker ({why}); "
            "pass --speaker-regex to split by speaker"
        )
        picked = set(rng.sample(range(len(records)), round(DEVEL_FRACTION * len(records))))
        in_devel = [i in picked for i in range(len(records))]
        record = {"split": "utterance", "reason": why}
    record |= {"seed": seed, "fraction": DEVEL_FRACTION, "from": train.path.name}
    sha = hashlib.sha256((train.sha256 + json.dumps(record, sort_keys=True)).encode()).hexdigest()
    parts = []
    for name, keep in (("train", False), ("devel", True)):
        rows = [r for r, d in zip(train.rows, in_devel, strict=True) if d == keep]
        problems = train.problems if name == "train" else []
        parts.append(PartitionCsv(name, train.path, sha, True, rows, list(problems), {"devel_split": record}))
    return parts[0], parts[1], notice


def _speaker_split(speakers: list[str], rng: random.Random) -> tuple[list[bool], list[str]]:
    """(in devel per row, devel speakers): speakers in a seeded order go to devel until it
    holds 20% of the rows; at least one speaker stays in train."""
    counts = Counter(speakers)
    order = sorted(counts)
    rng.shuffle(order)
    chosen, count, want = set(), 0, DEVEL_FRACTION * len(speakers)
    for s in order[:-1]:
        if count >= want:
            break
        chosen.add(s)
        count += counts[s]
    return [s in chosen for s in speakers], sorted(chosen)


def fold_sources(
    meta_root: Path, dataset: str, folds: list[str] | None, speaker_regex: str | None = None, seed: int = 0
) -> list[TaskSources]:
    """One task per fold of ``dataset`` (``D-foldK``): ``folds`` names them (None or
    ``all``: every fold)."""
    meta_root = Path(meta_root)
    found = datasets(meta_root)
    if dataset not in found:
        raise ConfigError(
            f"{meta_root}: no EmoBox corpus {dataset!r} in data/; found: {', '.join(found) or 'none'}; check --dataset"
        )
    available = folds_of(meta_root, dataset)
    if not available:
        raise ConfigError(f"{meta_root / 'data' / dataset}: no fold_K/{dataset}_train_fold_K.jsonl; check the checkout")
    wanted = available if not folds or list(folds) == ["all"] else [_fold_number(f, available, dataset) for f in folds]
    map_path, labels, map_sha = label_map(meta_root, dataset)
    return [_fold(meta_root, dataset, k, labels, map_path, map_sha, speaker_regex, seed) for k in wanted]


def _fold_number(text: str, available: list[int], dataset: str) -> int:
    shown = ", ".join(map(str, available))
    try:
        k = int(text)
    except ValueError:
        raise ConfigError(f"--folds {text!r} is not a fold number; give numbers ({shown}) or 'all'") from None
    if k not in available:
        raise ConfigError(f"--folds {k}: {dataset} has no fold {k}; its folds: {shown}")
    return k


def _fold(meta_root, dataset, k, labels, map_path, map_sha, speaker_regex, seed) -> TaskSources:
    folder = Path(meta_root) / "data" / dataset / f"fold_{k}"
    file = {p: folder / f"{dataset}_{p}_fold_{k}.jsonl" for p in ("train", "valid", "test")}
    origin = {"emobox": dataset, "fold": k, "label_map": str(map_path), "label_map_sha256": map_sha}

    def read(part: str, name: str) -> tuple[PartitionCsv, list]:
        table, records = read_jsonl(file[part], name, labels, map_path)
        table.origin = {**origin, "jsonl": table.path.name}
        table.sha256 = hashlib.sha256((table.sha256 + map_sha).encode()).hexdigest()
        return table, records

    train, records = read("train", "train")
    tables, notes = {"train": train}, []
    if file["valid"].is_file():
        tables["devel"] = read("valid", "devel")[0]
    else:
        tables["train"], tables["devel"], notice = split_devel(train, records, dataset, speaker_regex, seed)
        for t in (tables["train"], tables["devel"]):
            t.origin = {**origin, "jsonl": train.path.name, **t.origin}
        notes += [notice] if notice else []
    if file["test"].is_file():
        tables["test"] = read("test", "test")[0]
    csvs = {p: t.path for p, t in tables.items()}
    return TaskSources(task=f"{dataset}-fold{k}", csvs=csvs, tables=tables, notes=notes)
