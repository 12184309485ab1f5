"""EmoBox import (`emonet extract --emobox`): one task per fold with the label map applied,
devel = the valid file or a seeded speaker-independent 20% of train (recorded in the store),
a segment line read as a segment; bad input is one line naming the jsonl line and the fix."""

import json

import pytest

from emonet.cli.app import main
from emonet.store import open_store
from tests.helpers import tree_digest, write_emobox

EMODB = ["03", "08", "09", "10", "11", "12", "13", "14", "15", "16"]


@pytest.fixture
def emobox(tmp_path):
    meta, downloads = tmp_path / "EmoBox", tmp_path / "downloads"
    write_emobox(meta, downloads, "emodb", EMODB, folds=2, segment=True)
    write_emobox(meta, downloads, "acme", ["21", "22", "23", "24"], folds=1, valid=True)
    return meta, downloads


def _extract(store, meta, downloads, dataset, *extra) -> int:
    args = ["extract", "-s", store, "-dp", downloads, "--emobox", meta, "--dataset", dataset, "-q", "--workers", "1"]
    return main([str(a) for a in [*args, *extra]])


def _jsonl(meta, dataset, k, part):
    path = meta / "data" / dataset / f"fold_{k}" / f"{dataset}_{part}_fold_{k}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _key(rec) -> str:
    if "start_time" in rec:
        return f"{rec['wav']}@{rec['start_time']:g}-{rec['end_time']:g}"
    return rec["wav"]


def test_folds_become_tasks_with_the_label_map_and_a_speaker_independent_devel(tmp_path, emobox, capsys):
    meta, downloads = emobox
    store = tmp_path / "store"
    assert _extract(store, meta, downloads, "emodb", "--folds", "all", "--seed", "3") == 0
    assert _extract(store, meta, downloads, "acme") == 0
    s = open_store(store)
    assert s.tasks == ["acme-fold1", "emodb-fold1", "emodb-fold2"]
    for k in (1, 2):
        task = f"emodb-fold{k}"
        assert s.classes(task) == ["angry", "neutral"]  # W and N through label_map.json
        train, devel, test = (s.partition(task, p) for p in ("train", "devel", "test"))
        assert set(train.files) | set(devel.files) == {_key(r) for r in _jsonl(meta, "emodb", k, "train")}
        assert list(test.files) == [_key(r) for r in _jsonl(meta, "emodb", k, "test")]
        speaker = {f: f.split("/")[-1][:2] for f in [*train.files, *devel.files]}
        train_speakers, devel_speakers = {speaker[f] for f in train.files}, {speaker[f] for f in devel.files}
        assert devel_speakers and not devel_speakers & train_speakers
        split = devel.meta["origin"]["devel_split"]
        assert split["split"] == "speaker" and split["seed"] == 3 and split["speakers_devel"] == sorted(devel_speakers)
        assert "file names" in split["rule"] and devel.meta["origin"]["label_map"].endswith("label_map.json")
        assert 0.1 <= len(devel) / (len(train) + len(devel)) <= 0.35
        labels = {f: lab for f, lab, _ in [*train, *devel, *test]}
        for rec in _jsonl(meta, "emodb", k, "train") + _jsonl(meta, "emodb", k, "test"):
            assert labels[_key(rec)] == {"W": "angry", "N": "neutral"}[rec["emo"]]
    segment = [f for f in s.partition("emodb-fold1", "train").files + s.partition("emodb-fold1", "devel").files]
    assert sum("long.wav@0.75-1.5" in f for f in segment) == 1
    acme_devel = s.partition("acme-fold1", "devel")
    assert list(acme_devel.files) == [_key(r) for r in _jsonl(meta, "acme", 1, "valid")]
    assert "devel_split" not in acme_devel.meta["origin"]
    # the same command again: every partition up to date, nothing rewritten
    before = tree_digest(store)
    capsys.readouterr()
    assert _extract(store, meta, downloads, "emodb", "--seed", "3") == 0
    assert "nothing to do: every partition is up to date" in capsys.readouterr().out
    assert tree_digest(store) == before


def test_without_a_speaker_rule_devel_is_split_by_utterance_and_says_so(tmp_path, capsys):
    meta, downloads = tmp_path / "EmoBox", tmp_path / "downloads"
    write_emobox(meta, downloads, "acme", ["21", "22", "23", "24", "25"], folds=1)
    assert _extract(tmp_path / "a", meta, downloads, "acme") == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "split by utterance, not by speaker (no speaker rule for 'acme')" in err and "--speaker-regex" in err
    assert open_store(tmp_path / "a").partition("acme-fold1", "devel").meta["origin"]["devel_split"]["split"] == (
        "utterance"
    )
    assert _extract(tmp_path / "b", meta, downloads, "acme", "--speaker-regex", r"/(\d\d)a0") == 0
    devel = open_store(tmp_path / "b").partition("acme-fold1", "devel")
    split = devel.meta["origin"]["devel_split"]
    assert split["split"] == "speaker" and split["rule"].startswith("--speaker-regex")
    assert {f.split("/")[-1][:2] for f in devel.files} == set(split["speakers_devel"])


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_missing_audio_is_one_line_naming_the_wav_and_the_line_and_skip_bad_lists_it(tmp_path, emobox, capsys):
    meta, downloads = emobox
    rec = _jsonl(meta, "emodb", 1, "test")[2]
    (downloads / rec["wav"]).unlink()
    assert _extract(tmp_path / "s", meta, downloads, "emodb", "--folds", "1") == 2
    err = _error(capsys)
    assert "emodb_test_fold_1.jsonl row 3" in err and rec["wav"] in err and "file not found" in err, err
    assert "--skip-bad" in err and not (tmp_path / "s").exists()
    assert _extract(tmp_path / "s", meta, downloads, "emodb", "--folds", "1", "--skip-bad") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "skipped 1 bad row(s)" in out and "emodb_test_fold_1.jsonl row 3" in out
    assert len(open_store(tmp_path / "s").partition("emodb-fold1", "test").meta["skipped"]) == 1


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--dataset", "iemocap"], ["no EmoBox corpus 'iemocap'", "found: acme, emodb"]),
        (["--dataset", "emodb", "--folds", "5"], ["emodb has no fold 5; its folds: 1, 2"]),
        (["--dataset", "emodb", "--folds", "one"], ["--folds 'one' is not a fold number"]),
        (["--dataset", "emodb", "--task", "x"], ["--emobox names the tasks itself", "--task"]),
        ([], ["--emobox needs --dataset"]),
    ],
)
def test_usage_errors_name_the_option_and_the_choices(tmp_path, emobox, capsys, args, needles):
    meta, downloads = emobox
    store = tmp_path / "s"
    assert main([str(a) for a in ["extract", "-s", store, "-dp", downloads, "--emobox", meta, *args]]) == 2
    err = _error(capsys)
    assert all(n in err for n in needles), err
    assert not store.exists()


def test_a_label_missing_from_the_label_map_names_the_line_and_the_map(tmp_path, emobox, capsys):
    meta, downloads = emobox
    path = meta / "data" / "emodb" / "fold_2" / "emodb_train_fold_2.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = json.dumps({**json.loads(lines[1]), "emo": "F"})
    path.write_text("\n".join(lines) + "\n")
    assert _extract(tmp_path / "s", meta, downloads, "emodb") == 2
    err = _error(capsys)
    assert "emodb_train_fold_2.jsonl row 2: label 'F' is not in" in err and "label_map.json" in err, err
    assert "add it to the map" in err


def test_folds_decode_each_utterance_once_and_store_the_same_bits(tmp_path, emobox, monkeypatch):
    """Every utterance of emodb is in both folds (train or devel of one, test of the other):
    extracting both folds decodes each once, and each fold's partitions are byte for byte
    those of a store holding that fold alone."""
    import emonet.extraction.featurize as featurize

    meta, downloads = emobox
    decoded = []

    def counting_load_mono(path, rate, segment=None):  # the real decoder, counted
        decoded.append((path, segment))
        return load_mono(path, rate, segment)

    load_mono = featurize.load_mono
    monkeypatch.setattr(featurize, "load_mono", counting_load_mono)
    assert _extract(tmp_path / "both", meta, downloads, "emodb") == 0
    keys = {f for t in ("emodb-fold1", "emodb-fold2") for p in ("train", "devel", "test")
            for f in open_store(tmp_path / "both").partition(t, p).files}  # fmt: skip
    assert len(decoded) == len(set(decoded)) == len(keys)  # each fold has its own segment line
    assert not (tmp_path / "both" / ".staging").exists()
    for k in (1, 2):
        assert _extract(tmp_path / f"fold{k}", meta, downloads, "emodb", "--folds", k) == 0
        alone = tree_digest(tmp_path / f"fold{k}" / f"emodb-fold{k}")
        assert tree_digest(tmp_path / "both" / f"emodb-fold{k}") == alone


def test_a_jsonl_finds_duplicates_as_the_csv_reader_does_with_paths_compared_as_paths(tmp_path):
    from emonet.data.emobox import read_jsonl
    from emonet.data.partitions import read_partition_csv

    lines = [{"key": "a", "wav": "spk1/a.wav", "emo": "ang"}, {"key": "b", "wav": "spk2/../spk1//a.wav", "emo": "ang"}]
    path = tmp_path / "x_train_fold_1.jsonl"
    path.write_text("".join(json.dumps(rec) + "\n" for rec in lines))
    table, _ = read_jsonl(path, "train", {"ang": "angry"}, tmp_path / "label_map.json")
    csv = tmp_path / "train.csv"
    csv.write_text("file,label\nspk1/a.wav,angry\nspk2/../spk1//a.wav,angry\n")
    for t in (table, read_partition_csv(csv, "train")):
        assert [r.file for r in t.rows] == ["spk1/a.wav"]
        assert len(t.problems) == 1 and "duplicates row" in str(t.problems[0])
