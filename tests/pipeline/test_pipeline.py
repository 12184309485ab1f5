"""emonet run: YAML pipelines of emonet stages, checked first, re-run only where needed."""

from __future__ import annotations

import textwrap

import pytest

from emonet.cli.app import main
from emonet.errors import ConfigError
from emonet.pipeline import load_pipeline, run_pipeline
from emonet.pipeline.commands import check_stage

pytestmark = pytest.mark.slow  # whole pipelines on the demo corpus

PIPELINE = """
workdir: {workdir}
stages:
  corpus:
    command: demo-data
    args: [corpus]
    options:
      files-per-task: 24
      tasks: [acted, valence]
      max-seconds: 1.2
  features:
    command: extract
    options:
      store: features
      data-path: ${{corpus.dir}}/data
      multi-task-setup: ${{corpus.dir}}/multi-task-setup
      tasks: [acted, valence]
      quiet: true
  model:
    command: init-model
    args: [model.safetensors]
    options:
      store: ${{features.store}}
      number-of-filters: 4
      overwrite: true
"""


def _write(tmp_path, text=PIPELINE, name="p.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).format(workdir=tmp_path / "work"))
    return path


def test_runs_then_skips_what_is_up_to_date(tmp_path):
    path = _write(tmp_path)
    lines: list[str] = []
    first = run_pipeline(load_pipeline(path), echo=lines.append)
    assert [r.status for r in first] == ["ran", "ran", "ran"]
    assert (tmp_path / "work" / "model.safetensors").is_file()
    assert first[1].outputs == {"store": str(tmp_path / "work" / "features")}
    lines.clear()
    second = run_pipeline(load_pipeline(path), echo=lines.append)
    assert [r.status for r in second] == ["skipped"] * 3
    assert all("up to date, skipped" in line for line in lines)
    # a changed option re-runs that stage and the stages that use it, not those before
    path.write_text(path.read_text().replace("number-of-filters: 4", "number-of-filters: 8"))
    third = run_pipeline(load_pipeline(path), echo=lines.append)
    assert [(r.status, r.reason) for r in third] == [
        ("skipped", "up to date"),
        ("skipped", "up to date"),
        ("ran", "its options changed"),
    ]
    # a changed input file re-runs the stage that reads it; missing outputs re-run too
    (tmp_path / "work" / "model.safetensors").unlink()
    assert run_pipeline(load_pipeline(path), echo=lines.append)[2].reason == "its outputs are missing"


def test_cli_says_what_it_skipped_and_writes_the_table(tmp_path, capsys):
    path = _write(tmp_path)
    assert main(["run", str(path)]) == 0
    assert main(["run", str(path), "--dry-run"]) == 0
    assert "stage model: up to date, skipped" in capsys.readouterr().err
    assert (tmp_path / "work" / "results.csv").read_text().startswith("task")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("files-per-task: 24", "files-per-tusk: 24"),
            "unknown option 'files-per-tusk' for emonet demo-data; did you mean 'files-per-task'",
        ),
        (("command: extract", "command: extrct"), "unknown command 'extrct'; did you mean 'extract'"),
        (("${{features.store}}", "${{featurez.store}}"), "stage 'model' refers to stage 'featurez'"),
        (("${{features.store}}", "${{features.best}}"), "stage 'features' offers store"),
        (("files-per-task: 24", "files-per-task: many"), "stage 'corpus'"),
        (("workdir:", "workdr:"), "unknown key 'workdr' at the top level"),
        (("    args: [corpus]", "    args: [corpus]\n    after: [model]"), "depends on itself"),
        (("  model:\n", "  model: [\n"), "not valid YAML at line"),
    ],
)
def test_bad_pipelines_are_one_line_before_anything_runs(tmp_path, capsys, change, message):
    path = _write(tmp_path, PIPELINE.replace(*change))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split()) and "Traceback" not in err
    assert str(path) in " ".join(err.split())
    assert not (tmp_path / "work" / "corpus").exists()  # nothing ran


def test_a_failing_stage_stops_with_its_exit_code_and_keeps_earlier_stages(tmp_path, capsys):
    path = _write(
        tmp_path, PIPELINE.replace("tasks: [acted, valence]\n      quiet", "tasks: [acted, nope]\n      quiet")
    )
    assert main(["run", str(path)]) == 2
    assert "stage 'features' failed" in capsys.readouterr().err
    pipeline = load_pipeline(path)
    results = run_pipeline(pipeline, dry_run=True, echo=lambda _line: None)
    assert [r.status for r in results] == ["skipped", "planned", "planned"]


def test_every_shipped_pipeline_checks(tmp_path):
    from pathlib import Path

    shipped = sorted((Path(__file__).resolve().parents[2] / "pipelines").glob("*.yaml"))
    for path in shipped:
        pipeline = load_pipeline(path, workdir=tmp_path)
        for stage in pipeline.stages:
            try:
                check_stage(pipeline, stage)
            except ConfigError as exc:  # pragma: no cover - the message is the point
                pytest.fail(str(exc))
