"""The cross-corpus matrix: single-corpus models x test corpora, from the Python API, the CLI
and a pipeline stage; its diagonal is plain ``evaluate``."""

from __future__ import annotations

import csv
import json
import textwrap

import pytest

from emonet.cli.app import main
from emonet.cli.stages import register_stage_commands
from emonet.evaluation import cross_corpus, evaluate
from emonet.pipeline import load_pipeline, run_pipeline
from tests.evaluation.test_bad_input import _model
from tests.helpers import make_task

pytestmark = pytest.mark.slow  # extracts a store and scores models

SHARED = ("angry", "happy", "neutral", "sad")  # EmoBox's cross-corpus label set, the demo's acted classes
MAP = "negative=angry,positive=happy"  # for valence (its neutral maps by name)
TASKS = ["acted", "b", "valence"]


@pytest.fixture(scope="module")
def corpora(demo_store, tmp_path_factory):
    """(stores, [model of acted alone, model of b alone]): task b, a second corpus with the shared
    labels, in its own store with the demo's features."""
    root = tmp_path_factory.mktemp("xcm")
    data, _ = make_task(root, "b", n_per_class=2, classes=SHARED)
    store = root / "store"
    args = ["extract", "--store", str(store), "--data-path", str(data), "--multi-task-setup", str(root / "csv")]
    assert main([*args, "--tasks", "b", "-q"]) == 0
    models = [_model(demo_store, root / "acted.safetensors", ["acted"]), _model(store, root / "b.safetensors", ["b"])]
    return [demo_store, store], models


def test_the_matrix_s_diagonal_is_plain_evaluate(corpora, tmp_path, monkeypatch):
    import importlib

    module = importlib.import_module("emonet.evaluation.cross_corpus")  # the package re-exports its function

    stores, models = corpora
    loads = []
    real = module.load_model
    monkeypatch.setattr(module, "load_model", lambda path, *a, **k: loads.append(str(path)) or real(path, *a, **k))
    result = cross_corpus(models, stores, TASKS, label_map=MAP, output=tmp_path / "xc")
    assert loads == [str(m) for m in models]  # each checkpoint read once, whatever its heads and the tasks
    assert result.heads == ["acted", "b"] and result.tasks == TASKS
    for model, head in zip(models, result.heads, strict=True):
        plain = evaluate(model, stores, [head], write=False).tasks[head].metrics["uar"]
        assert result.table[head][head] == plain
        for task in TASKS:  # each cell is evaluate --head of that pair
            one = evaluate(model, stores, [task], head=head, label_map=MAP, write=False)
            assert result.table[head][task] == one.tasks[f"{head}_on_{task}"].metrics["uar"]
    out = tmp_path / "xc"
    rows = list(csv.reader(open(out / "cross_corpus.csv")))
    assert rows[0] == ["head", *TASKS] and [r[0] for r in rows[1:]] == ["acted", "b"]
    assert float(rows[2][2]) == pytest.approx(result.table["b"]["b"], abs=5e-5)
    md = (out / "cross_corpus.md").read_text().splitlines()
    assert md[0] == "| train \\ test | acted | b | valence |" and md[2].startswith("| acted | ")
    assert (out / "cross_corpus.png").read_bytes()[:4] == b"\x89PNG"
    pairs = json.loads((out / "results.json").read_text())
    assert set(pairs) == {f"{h}_on_{t}" for h in ("acted", "b") for t in TASKS}
    assert (out / "confusion_b_on_valence.png").is_file()


def test_the_cli_writes_the_table_and_refuses_bad_input_in_one_line(corpora, tmp_path, capsys):
    stores, models = corpora
    base = ["cross-corpus", "--model", str(models[0]), "--model", str(models[1])]
    base += ["-s", str(stores[0]), "-s", str(stores[1]), "-o", str(tmp_path / "xc")]
    assert main([*base, "-t", *TASKS, "--label-map", MAP]) == 0
    printed = capsys.readouterr().out
    assert "train \\ test" in printed and "cross_corpus.csv" in printed
    assert all((tmp_path / "xc" / f).is_file() for f in ("cross_corpus.csv", "cross_corpus.md", "cross_corpus.png"))
    refused = [
        ([*base, "-t", *TASKS], "negative, positive"),  # valence's labels, unmapped
        ([*base, "-t", "acted", "--heads", "nope"], "--heads 'nope'"),
        ([*base, "-t", "acted", "--label-map", "a=angry,a=sad"], "mapped twice"),
        ([*base[:3], *base[5:], "-t", "acted", "--heads", "acted", "--model", str(models[0])], "several models"),
    ]
    for args, needle in refused:
        assert main(args) != 0
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err, err


def test_a_pipeline_stage_writes_the_table(corpora, tmp_path):
    """A cross-corpus stage, its map a file inside the workdir: the table files and a row per
    pair in emonet run's table; an edit of the map re-runs the stage, an inline map is no path."""
    stores, models = corpora
    register_stage_commands()  # as emonet run does, for the run_pipeline calls
    work = tmp_path / "work"
    work.mkdir()
    (work / "map.json").write_text('{"negative": "angry", "positive": "happy"}')
    text = f"""
    workdir: {work}
    stages:
      matrix:
        command: cross-corpus
        options:
          model: [{models[0]}, {models[1]}]
          store: [{stores[0]}, {stores[1]}]
          tasks: [acted, b, valence]
          label-map: map.json
          output: matrix
    """
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text))
    assert main(["run", str(path), "--dry-run"]) == 0 and not (work / "matrix").exists()
    assert main(["run", str(path)]) == 0
    assert all((work / "matrix" / f).is_file() for f in ("cross_corpus.csv", "cross_corpus.md", "cross_corpus.png"))
    table = (work / "results.csv").read_text()  # emonet run's own table has every pair
    assert "acted_on_valence" in table and "b_on_b" in table
    assert run_pipeline(load_pipeline(path), echo=lambda _line: None)[0].status == "skipped"
    (work / "map.json").write_text('{"negative": "sad", "positive": "happy"}')
    again = run_pipeline(load_pipeline(path), echo=lambda _line: None)[0]
    assert again.status == "ran" and "input" in again.reason, again.reason
    path.write_text(path.read_text().replace("label-map: map.json", f'label-map: "{MAP}"'))
    assert run_pipeline(load_pipeline(path), echo=lambda _line: None)[0].status == "ran"  # not a file in the workdir
