"""foreach: a stage repeated over a list (cross-validation folds), its expansions, references to
one or all of them, the one-line refusals, and the cross-validation table (mean ± std over folds)
computed from the folds' own results.json."""

from __future__ import annotations

import json
import shutil
import textwrap

import pandas as pd
import pytest

from emonet.cli.app import main
from emonet.pipeline import load_pipeline, run_pipeline
from emonet.pipeline.cv_results import corpus_of

UNIT = """
workdir: {workdir}
stages:
  features:
    command: extract
    options: {{store: features, data-path: d, multi-task-setup: m, tasks: [a-fold1, a-fold2]}}
  train:
    command: train
    foreach: {{fold: [1, 2]}}
    label: cv
    options:
      store: ${{features.store}}
      tasks:
        - a-fold${{fold}}
        - b-fold${{item}}
      run-name: r${{item}}
  score:
    command: evaluate
    foreach: [1, 2]
    options:
      model: ${{train[${{item}}].best}}
      store: ${{features.store}}
      tasks: ["a-fold${{item}}"]
  last:
    command: evaluate
    after: [train]
    args: []
    options:
      model: ${{train[2].best}}
      store: ${{features.store}}
"""


def _write(tmp_path, text=UNIT):
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text).format(workdir=tmp_path / "work"))
    return path


def test_expansion_substitutes_items_and_resolves_references(tmp_path):
    pipeline = load_pipeline(_write(tmp_path))
    stages = {s.name: s for s in pipeline.stages}
    assert [s.name for s in pipeline.stages] == ["features", "train[1]", "train[2]", "score[1]", "score[2]", "last"]
    assert stages["train[2]"].options["tasks"] == ["a-fold2", "b-fold2"]  # ${fold} and ${item}: one item
    assert stages["train[2]"].options["run-name"] == "r2"
    assert stages["train[2]"].label == "cv[2]" and stages["train[2]"].folder == "train/2"
    assert stages["score[1]"].options["model"] == "${train[1].best}"
    assert stages["score[1]"].depends_on() == ["features", "train[1]"]
    assert stages["last"].depends_on() == ["features", "train[1]", "train[2]"]  # after: [train] = every expansion


def test_a_list_item_naming_a_foreach_stage_stands_for_every_expansion(tmp_path):
    text = UNIT.replace("    args: []\n", "    args: [x, '${{train.run}}']\n")
    stage = load_pipeline(_write(tmp_path, text)).stage("last")
    assert stage.args == ["x", "${train[1].run}", "${train[2].run}"]


def test_a_dry_run_plans_every_expansion_in_its_own_folder(tmp_path):
    lines: list[str] = []
    run_pipeline(load_pipeline(_write(tmp_path)), dry_run=True, echo=lines.append)
    assert [line.split(":")[0] for line in lines] == [
        "stage features",
        "stage train[1]",
        "stage train[2]",
        "stage score[1]",
        "stage score[2]",
        "stage last",
    ]
    assert f"--experiment-base-path {tmp_path / 'work' / 'runs' / 'train' / '2'}" in lines[2]
    assert "--model ${train[2].best}" in lines[4]
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("foreach: [1, 2]", "foreach: []"), ["stage 'score'", "'foreach' is empty"]),
        (("foreach: [1, 2]", "foreach: [1, 2, '1']"), ["stage 'score'", "gives item '1' twice"]),
        (("foreach: [1, 2]", "foreach: [a/b]"), ["stage 'score'", "'foreach' item 'a/b'"]),
        (("foreach: [1, 2]", "foreach: 3"), ["stage 'score'", "must be a list"]),
        (("run-name: r${{item}}", "run-name: r${{fold}}x${{what}}"), ["stage 'train[1]'", "'${what}' is not defined"]),
        (("${{train[2].best}}", "${{train[3].best}}"), ["stage 'last'", "foreach stage 'train' has no item '3'"]),
        (("${{train[2].best}}", "${{train.best}}"), ["stage 'last'", "stands for the outputs of every expansion"]),
        (("model: ${{train[2].best}}", "model: ['${{train.best}}']"), ["stage 'last'", "'model' takes one value"]),
        (("${{train[2].best}}", "${{features[1].store}}"), ["stage 'last'", "stage 'features' has no 'foreach'"]),
        (("    args: []\n", "    args: [x]\n    group: a\n"), ["stage 'last'", "'group'", "needs 'foreach'"]),
        (("    label: cv\n", "    label: cv\n    group: '('\n"), ["stage 'train'", "not a regular expression"]),
        (("    foreach: [1, 2]\n", "    foreach: [1, 2]\n    label: cv\n"), ["same label 'cv[1]'"]),
        (("tasks: [a-fold1, a-fold2]", "tasks: [a-fold${{item}}]"), ["line 6", "quote a value"]),
        (
            ("    args: []\n", "    args: []\n    label: last-${{item}}\n"),
            ["stage 'last'", "'${item}' is only defined in a stage with 'foreach'"],
        ),
    ],
    ids=[
        "empty",
        "duplicate",
        "bad-item",
        "not-a-list",
        "unknown-variable",
        "no-such-item",
        "all-in-a-scalar",
        "all-for-one-value",
        "not-foreach",
        "group-without-foreach",
        "bad-group",
        "label-clash",
        "unquoted-in-flow",
        "item-outside-foreach",
    ],
)
def test_bad_uses_are_one_line_naming_the_stage(tmp_path, capsys, change, words):
    path = _write(tmp_path, UNIT.replace(*change))
    assert main(["run", str(path), "--dry-run"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err and str(path) in err, err
    for w in words:
        assert w in err, err


def test_corpus_names_lose_their_fold_suffix():
    default = r"[-_]fold[-_]?\d+$"
    assert corpus_of("emodb-fold3", default) == "emodb"
    assert corpus_of("iemocap_fold_10", default) == "iemocap"
    assert corpus_of("emodb", default) == "emodb"
    assert corpus_of("acted-2", r"-\d+$") == "acted"


CV = """
workdir: {workdir}
stages:
  features:
    command: extract
    options:
      store: features
      data-path: {data}
      multi-task-setup: {setup}
      tasks: [acted-fold1, acted-fold2]
      quiet: true
  folds:
    command: train
    foreach: {items}
    options:
      store: ${{features.store}}
      tasks: ["acted-fold${{item}}"]
      number-of-resnet-blocks: 1
      number-of-filters: 4
      window: 1.0
      batch-size: 8
      steps-per-epoch: 2
      epochs: 1
      run-name: acted-fold${{item}}
      quiet: true
  rescore:
    command: evaluate
    foreach: {items}
    options:
      model: ${{folds[${{item}}].best}}
      store: ${{features.store}}
      tasks: ["acted-fold${{item}}"]
"""


@pytest.fixture
def fold_setup(demo_corpus, tmp_path):
    """Two stand-in folds of the demo corpus's acted task: the second scores on the first's
    devel partition and selects on its test partition."""
    setup = tmp_path / "setup"
    acted = demo_corpus / "multi-task-setup" / "acted"
    shutil.copytree(acted, setup / "acted-fold1")
    (setup / "acted-fold2").mkdir()
    for mine, theirs in (("train", "train"), ("val", "test"), ("test", "val")):
        shutil.copy(acted / f"{theirs}.csv", setup / "acted-fold2" / f"{mine}.csv")
    return setup


def _cv_pipeline(tmp_path, demo_corpus, setup, items):
    path = tmp_path / "cv.yaml"
    text = CV.format(workdir=tmp_path / "work", data=demo_corpus / "data", setup=setup, items=items)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.slow
def test_cross_validation_runs_resume_and_end_with_mean_and_std_over_folds(tmp_path, demo_corpus, fold_setup, capsys):
    path = _cv_pipeline(tmp_path, demo_corpus, fold_setup, "[1]")
    assert main(["run", str(path)]) == 0
    # a fold added later: the finished expansions are skipped, the new ones run
    path = _cv_pipeline(tmp_path, demo_corpus, fold_setup, "[1, 2]")
    capsys.readouterr()
    assert main(["run", str(path)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "stage folds[1]: up to date, skipped" in err and "stage rescore[1]: up to date, skipped" in err
    assert "stage folds[2]: runs (never ran)" in err and "stage rescore[2]: runs (never ran)" in err
    work = tmp_path / "work"
    runs = [work / "runs" / "folds" / i / f"acted-fold{i}" for i in "12"]
    by_hand = []
    for i, run in enumerate(runs, 1):
        test = json.loads((run / "results.json").read_text())[f"acted-fold{i}"]["test"]
        by_hand.append([test["uar"], test["accuracy"], test["macro_f1"]])
    frame = pd.DataFrame(by_hand, columns=["ua", "wa", "macro_f1"])
    table = pd.read_csv(work / "cv_results.csv").set_index(["stage", "corpus"])
    assert list(table.index) == [("folds", "acted"), ("rescore", "acted")]
    for stage in ("folds", "rescore"):  # evaluate re-scores the same best checkpoints
        row = table.loc[(stage, "acted")]
        assert row["folds"] == 2
        for metric in ("ua", "wa", "macro_f1"):
            assert row[f"{metric}_mean"] == pytest.approx(frame[metric].mean(), abs=1e-4)
            assert row[f"{metric}_std"] == pytest.approx(frame[metric].std(ddof=1), abs=1e-4)
    markdown = (work / "cv_results.md").read_text()
    assert "| folds | acted | 2 |" in markdown and f"{100 * frame['ua'].mean():.2f} ± " in markdown
    assert all(str(run) in markdown for run in runs)  # each fold's run folder, listed and kept
    folds = pd.read_csv(work / "cv_folds.csv")
    assert list(folds["fold"]) == [1, 2, 1, 2] and set(folds["partition"]) == {"test"}
    results = (work / "results.csv").read_text().splitlines()[0]
    assert results == "task,folds[1],folds[2],rescore[1],rescore[2]"
    # a third run: nothing to do, the same tables
    before = (work / "cv_results.csv").read_text()
    again = run_pipeline(load_pipeline(path), echo=lambda _line: None)
    assert [r.status for r in again] == ["skipped"] * 5
    assert main(["run", str(path)]) == 0 and (work / "cv_results.csv").read_text() == before
