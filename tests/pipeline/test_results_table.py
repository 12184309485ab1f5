"""The pipeline's results table (pandas): tasks x stages, gaps where a stage did not score a
task, written as CSV, markdown and a chart; from real results.json files."""

from __future__ import annotations

import json
import textwrap

import pandas as pd

from emonet.pipeline import load_pipeline
from emonet.pipeline.results import collect_results, results_frame, table_csv, table_markdown, write_results
from emonet.pipeline.runner import StageResult

TABLE = {"scratch": {"valence": 0.5, "acted": 0.875}, "adapters": {"acted": 0.91234}}


def test_rows_are_sorted_tasks_columns_the_stages_in_order_gaps_are_nan():
    frame = results_frame(TABLE)
    assert list(frame.index) == ["acted", "valence"] and list(frame.columns) == ["scratch", "adapters"]
    assert frame.loc["acted", "adapters"] == 0.91234 and pd.isna(frame.loc["valence", "adapters"])


def test_csv_and_markdown_leave_gaps_empty():
    assert table_csv(TABLE) == "task,scratch,adapters\nacted,0.8750,0.9123\nvalence,0.5000,\n"
    assert table_markdown(TABLE).splitlines() == [
        "| task | scratch | adapters |",
        "| --- | ---: | ---: |",
        "| acted | 0.875 | 0.912 |",
        "| valence | 0.500 |  |",
    ]


def test_from_results_json_to_files(tmp_path):
    path = tmp_path / "p.yaml"
    body = """
    workdir: {w}
    stages:
      a: {{command: verify, args: [x]}}
      b: {{command: verify, args: [y]}}
    """
    path.write_text(textwrap.dedent(body).format(w=tmp_path / "work"))
    pipeline = load_pipeline(path)
    pipeline.workdir.mkdir()  # a run makes it
    runs = []
    for name, results in (("a", {"acted": {"test": {"uar": 0.75}}}), ("b", {"acted": {"devel": {"uar": 0.5}}})):
        run = tmp_path / name
        run.mkdir()
        (run / "results.json").write_text(json.dumps(results))
        runs.append(StageResult(name, "ran", "", 0.0, {"run": str(run)}))
    table = collect_results(pipeline, runs)
    assert table == {"a": {"acted": 0.75}, "b": {"acted": 0.5}}  # devel where no test was scored
    files = write_results(pipeline, table)
    assert files["csv"].read_text() == "task,a,b\nacted,0.7500,0.5000\n"
    assert files["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert write_results(pipeline, {})["csv"].read_text() == "task\n"  # nothing scored: a header only
