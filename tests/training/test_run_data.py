"""A run reads only the data it started on: its stores' features and partitions are pinned in
its folder (data.json) and checked on --resume, before every epoch and before the final
scoring; a finished run is never trained or scored again; devel must be able to select."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emonet.cli.app import main
from emonet.models import ModelConfig
from emonet.training import TrainConfig, train
from emonet.training.pin import DataChangedError
from emonet.training.progress import Progress
from emonet.training.trainer import TrainingInterrupted
from tests.helpers import make_task, tree_digest, write_csv

pytestmark = pytest.mark.slow  # training runs with re-extraction between epochs

TINY = ModelConfig(n_blocks=1, n_filters=4, dropout=0.0)


def _extract(corpus: Path, store: Path, *extra, task="arousal", train_csv=None, nm="32") -> None:
    csvs = corpus / "tasks" / task
    args = ["extract", "-s", store, "-dp", corpus / "data", "-t", task, "-tr", train_csv or csvs / "train.csv",
            "-v", csvs / "devel.csv", "-te", csvs / "test.csv", "-nm", nm, "--frames-per-shard", "64", "-q",
            *extra]  # fmt: skip
    assert main([str(a) for a in args]) == 0


def _config(store, exps, **kw) -> TrainConfig:
    base = dict(batch_size=8, window=1.0, epochs=3, patience=5, steps_per_epoch=2, learning_rate=0.01, device="cpu")
    base.update(kw)
    return TrainConfig(stores=[str(store)], tasks=["arousal"], experiments=str(exps), model=TINY, **base)


class _AfterEpoch(Progress):
    """Runs ``action`` once the given epoch is recorded (a deterministic hook between epochs),
    or, with ``mid``, after its last training step (before its validation and record)."""

    def __init__(self, epoch: int, action, mid: bool = False):
        self.at, self.action, self.mid, self.steps = epoch, action, mid, 0
        self.done, self.trained_after = False, []  # epochs that trained after the action

    def begin(self, run_dir, steps_per_epoch: int, start_epoch: int) -> None:
        self.steps = steps_per_epoch

    def step(self, epoch: int, step: int, loss) -> None:
        if self.done:
            self.trained_after.append(epoch)
        if self.mid and epoch == self.at and step == self.steps:
            self.action()
            self.done = True

    def epoch(self, summary) -> None:
        if not self.mid and summary.epoch == self.at:
            self.action()
            self.done = True


def _stop():
    raise KeyboardInterrupt


def _interrupted_run(store: Path, exps: Path) -> Path:
    """A real run stopped (as by Ctrl-C) after its first epoch: resumable."""
    with pytest.raises(TrainingInterrupted):
        train(_config(store, exps), progress=_AfterEpoch(1, _stop))
    (run,) = exps.iterdir()
    assert (run / "state.pt").is_file() and not (run / "results.json").exists()
    return run


def _one_line(capsys, rc, *needles) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, (rc, err)
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def test_the_run_records_its_data(demo_corpus, tmp_path):
    store = tmp_path / "s"
    _extract(demo_corpus, store)
    run, _ = train(_config(store, tmp_path / "e", epochs=1))
    pins = json.loads((run / "data.json").read_text())
    import emonet

    opened = emonet.open_store(store)
    meta = opened.partition("arousal", "train").meta
    part = pins["tasks"]["arousal"]["partitions"]["train"]
    assert part["index_sha256"] == meta["index_sha256"] and part["files"] == meta["files"]
    assert set(pins["tasks"]["arousal"]["partitions"]) == {"train", "devel", "test"}
    assert pins["tasks"]["arousal"]["classes"] == ["high", "low"]
    assert pins["stores"] == {str(store): opened.feature_hash}


@pytest.mark.parametrize("change", ["features", "partition"])
def test_resume_on_re_extracted_data_is_refused_and_changes_nothing(demo_corpus, tmp_path, capsys, change):
    store = tmp_path / "s"
    _extract(demo_corpus, store)
    run = _interrupted_run(store, tmp_path / "e")
    if change == "features":  # the case that was reported: 32-mel features re-extracted with other mels
        _extract(demo_corpus, store, "--overwrite", nm="24")
        needles = [str(store), "another feature config"]
    else:  # the same features, a train partition from another csv
        rows = (demo_corpus / "tasks" / "arousal" / "train.csv").read_text().splitlines()
        fewer = write_csv(tmp_path / "train.csv", rows[1:-3])
        _extract(demo_corpus, store, "--overwrite", train_csv=fewer)
        needles = ["task 'arousal', partition train", "re-extracted"]
    capsys.readouterr()
    before = tree_digest(run)
    rc = main(["train", "--resume", str(run), "-q"])
    _one_line(capsys, rc, f"--resume {run}", *needles, "since the run started")
    assert tree_digest(run) == before


def test_resume_of_a_finished_run_says_so_and_rewrites_nothing(demo_corpus, tmp_path, capsys):
    store = tmp_path / "s"
    _extract(demo_corpus, store)
    run, results = train(_config(store, tmp_path / "e", epochs=1))
    before = tree_digest(run)
    stamps = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "-q"]) == 0
    cap = capsys.readouterr()
    assert "finished" in cap.err and "nothing to resume" in cap.err
    assert "arousal" in cap.out  # the stored results, as a table
    assert tree_digest(run) == before
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == stamps


@pytest.mark.parametrize("at_epoch, mid, epochs_kept", [(1, True, 0), (1, False, 1), (2, False, 2)])
def test_a_re_extract_while_the_run_reads_stops_it(demo_corpus, tmp_path, at_epoch, mid, epochs_kept):
    """A real ``emonet extract --overwrite`` of the train partition during epoch 1 (after its
    last step), or right after epoch 1 or 2 (of 2): the run stops before recording that epoch,
    before the next one, or before scoring test, in one line."""
    store = tmp_path / "s"
    _extract(demo_corpus, store)
    rows = (demo_corpus / "tasks" / "arousal" / "train.csv").read_text().splitlines()
    fewer = write_csv(tmp_path / "train.csv", rows[3:])

    def re_extract():
        _extract(demo_corpus, store, "--overwrite", train_csv=fewer)

    hook = _AfterEpoch(at_epoch, re_extract, mid)
    with pytest.raises(DataChangedError) as exc:
        train(_config(store, tmp_path / "e", epochs=2), progress=hook)
    assert hook.done and hook.trained_after == [], "not one step is trained on the changed data"
    msg = str(exc.value)
    (run,) = (tmp_path / "e").iterdir()
    assert "\n" not in msg and "task 'arousal', partition train" in msg and "while this run was reading it" in msg
    assert f"emonet train --resume {run}" in msg and "restore the store" in msg
    assert not (run / "results.json").exists(), "nothing may be scored on the new partitions"
    metrics = run / "metrics.csv"
    epochs = {line.split(",")[0] for line in metrics.read_text().splitlines()[1:]} if metrics.exists() else set()
    assert epochs == {str(e) for e in range(1, epochs_kept + 1)}, "an epoch that read changed data is not recorded"
    with pytest.raises(DataChangedError):  # and the run cannot be resumed on the new data either
        from emonet.training.api import resume

        resume(run)


@pytest.fixture
def odd_corpus(tmp_path):
    """Wavs of a two-class task, a broken file, and the csvs to misuse them."""
    data, csvs = make_task(tmp_path / "c", "t", n_per_class=4)
    (data / "t" / "broken.wav").write_bytes(b"not audio")
    return data, csvs


@pytest.mark.parametrize("case", ["empty", "classes-absent-from-train"])
def test_a_devel_partition_that_cannot_select_is_refused_before_anything(odd_corpus, tmp_path, capsys, case):
    data, csvs = odd_corpus
    train_csv = csvs["train"]
    if case == "empty":  # every devel row is a broken file: skipped, the partition is empty
        devel = write_csv(tmp_path / "devel.csv", [("t/broken.wav", "a")])
        needles = ["devel partition has no labelled utterances"]
    else:  # every train file of class b is broken: train holds only a, devel only b
        rows = [r for r in train_csv.read_text().splitlines()[1:] if r.endswith(",a")]
        train_csv = write_csv(tmp_path / "train.csv", [*rows, "t/broken.wav,b"])
        devel = write_csv(
            tmp_path / "devel.csv", [r for r in csvs["devel"].read_text().splitlines() if r.endswith(",b")]
        )
        needles = ["none of the devel classes (b)", "train partition (a)", "0 every epoch"]
    store = tmp_path / "s"
    args = ["extract", "-s", store, "-dp", data, "-t", "t", "-tr", train_csv, "-v", devel, "-nm", "32", "--skip-bad"]
    assert main([*map(str, args), "-q"]) == 0
    capsys.readouterr()
    rc = main(["train", "-s", str(store), "-t", "t", "-ebp", str(tmp_path / "e"), "-N", "1", "-nf", "4", "-q"])
    _one_line(capsys, rc, "task 't'", *needles, "-v DEVEL.csv")
    assert not (tmp_path / "e").exists() or not any((tmp_path / "e").iterdir()), "no run folder"


def test_results_json_and_metrics_never_hold_a_bare_nan(tmp_path):
    from emonet.training.report import write_reports
    from emonet.training.run_dir import write_metrics

    nan = float("nan")
    results = {"t": {"devel": {"uar": 0.5, "loss": nan, "roc_auc": float("inf"), "per_class": {"a": {}, "b": {}},
                               "confusion_matrix": [[1, 0], [0, 1]], "curve": [nan, 1.0]}}}  # fmt: skip
    write_reports(tmp_path, results, [], 0)

    def refuse(token):
        raise AssertionError(f"bare {token} in results.json")

    doc = json.loads((tmp_path / "results.json").read_text(), parse_constant=refuse)
    assert doc["t"]["devel"]["loss"] is None and doc["t"]["devel"]["roc_auc"] is None
    assert doc["t"]["devel"]["curve"] == [None, 1.0] and doc["t"]["devel"]["uar"] == 0.5
    write_metrics(tmp_path, [{"epoch": 1, "task": "t", "loss": 0.5, "devel_loss": nan, "devel_uar": float("-inf")}])
    text = (tmp_path / "metrics.csv").read_text().lower()
    assert "nan" not in text and "inf" not in text and "1,,t,,0.5,,,," in text


def test_a_run_without_a_data_record_is_pinned_at_resume_and_says_so(demo_corpus, tmp_path, capsys):
    store = tmp_path / "s"
    _extract(demo_corpus, store)
    run = _interrupted_run(store, tmp_path / "e")
    recorded = (run / "data.json").read_bytes()
    (run / "data.json").unlink()  # as a run folder written before runs kept the record
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "-q"]) == 0
    assert "has no data.json (an older run); its data is pinned now" in capsys.readouterr().err
    assert (run / "data.json").read_bytes() == recorded and (run / "results.json").is_file()
