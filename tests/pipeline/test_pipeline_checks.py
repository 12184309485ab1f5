"""emonet run refuses, in one line and before anything runs, what it would otherwise get wrong:
quoted booleans, duplicate stage names and labels, paths that leave the workdir, a workdir
that is a file or read-only, a workdir another emonet run holds; and a dry run writes nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from emonet.cli.app import main
from emonet.pipeline import load_pipeline, run_pipeline
from emonet.pipeline.commands import check_stage, stage_argv
from emonet.pipeline.lock import workdir_lock
from tests.mounts import tmpfs
from tests.pipeline.test_pipeline import PIPELINE


def _write(tmp_path, text=PIPELINE, name="p.yaml", workdir=None):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).format(workdir=workdir or tmp_path / "work"))
    return path


def _one_line_refusal(capsys, path, *words):
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err and str(path) in err, err
    for w in words:
        assert w in err, err
    return err


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("quiet: true", 'quiet: "no"'), ["stage 'features'", "'quiet' is a flag", "'no'"]),
        (("quiet: true", "quiet: maybe"), ["stage 'features'", "'quiet' is a flag", "'maybe'"]),
        (("quiet: true", "quiet: 1"), ["stage 'features'", "'quiet' is a flag"]),
        (("overwrite: true", "overwrite: 'true'"), ["stage 'model'", "'overwrite' is a flag"]),
        (("quiet: true", "quiet:"), ["stage 'features'", "'quiet' is a flag"]),
        (("number-of-filters: 4", "number-of-filters:"), ["stage 'model'", "'number-of-filters' has no value"]),
        # a stage name given twice: plain YAML would keep the last one only
        (("  model:\n", "  corpus:\n"), ["key 'corpus' appears twice", "lines 4 and"]),
        (("      store: features\n", "      store: features\n      store: other\n"), ["key 'store' appears twice"]),
        # two stages with one label would share one column of the results table
        (("    args: [model.safetensors]", "    args: [model.safetensors]\n    label: features"), ["same label"]),
        # paths: relative ones stay inside the workdir
        (("store: features", "store: ../features"), ["stage 'features'", "'store: ../features' leaves the workdir"]),
        (("data-path: ${{corpus.dir}}/data", "data-path: ${{corpus.dir}}/../../data"), ["leaves the workdir"]),
        (("args: [model.safetensors]", "args: [../model.safetensors]"), ["stage 'model'", "leaves the workdir"]),
        (("  model:\n", "  ../model:\n"), ["stage name '../model' must be"]),
        (("  model:\n", "  a/b:\n"), ["stage name 'a/b' must be"]),
        # values: the command line's own conversions, required options and arguments
        (("number-of-filters: 4", "number-of-filters: four"), ["stage 'model'", "'--number-of-filters'", "integer"]),
        (("quiet: true", "quiet: true\n      format: tar"), ["stage 'features'", "'tar' is not one of 'zarr'"]),
        (("      store: features\n", ""), ["stage 'features'", "emonet extract needs the option 'store'"]),
        (("args: [corpus]", "args: [corpus, more]"), ["stage 'corpus'", "takes 1 argument(s) in 'args', not 2"]),
        (("    args: [model.safetensors]\n", ""), ["stage 'model'", "needs its argument OUT_PATH"]),
    ],
    ids=[
        "flag-quoted-no",
        "flag-maybe",
        "flag-int",
        "flag-quoted-true",
        "flag-null",
        "option-null",
        "stage-twice",
        "option-twice",
        "label-twice",
        "dotdot-store",
        "dotdot-after-ref",
        "dotdot-argument",
        "name-dotdot",
        "name-slash",
        "type-int",
        "choice",
        "option-missing",
        "args-extra",
        "args-missing",
    ],
)
def test_refused_in_one_line_before_anything_runs(tmp_path, capsys, change, words):
    old, new = change
    assert old in PIPELINE, old
    path = _write(tmp_path, PIPELINE.replace(old, new))
    assert main(["run", str(path)]) == 2
    _one_line_refusal(capsys, path, *words)
    assert not (tmp_path / "work").exists()  # nothing ran, nothing was written


def test_only_yaml_booleans_are_flags(tmp_path):
    """`quiet: no` (an unquoted YAML boolean) turns the flag off; `true` turns it on."""
    path = _write(tmp_path, PIPELINE.replace("quiet: true", "quiet: no"))
    pipeline = load_pipeline(path)
    features = pipeline.stage("features")
    check_stage(pipeline, features)
    assert "--quiet" not in stage_argv(features, pipeline.workdir, lambda ref: "/x")
    features.options["quiet"] = True
    assert "--quiet" in stage_argv(features, pipeline.workdir, lambda ref: "/x")


def test_absolute_paths_outside_the_workdir_are_inputs_as_written(tmp_path, demo_corpus):
    text = PIPELINE.replace("${{corpus.dir}}", str(demo_corpus))
    pipeline = load_pipeline(_write(tmp_path, text))
    for stage in pipeline.stages:
        check_stage(pipeline, stage)


@pytest.mark.slow
def test_a_list_option_before_positional_arguments_runs_as_its_dry_run_said(tmp_path, capsys):
    """A list option last and a positional argument: the argument is not taken as one more
    value of the list (the dry run parses the very command line the run uses)."""
    text = """
    workdir: {workdir}
    stages:
      corpus:
        command: demo-data
        args: [corpus]
        options:
          files-per-task: 12
          max-seconds: 1.0
          tasks: [acted, valence]
    """
    path = _write(tmp_path, text)
    assert main(["run", str(path), "--dry-run"]) == 0
    assert "-- " + str(tmp_path / "work" / "corpus") in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "work").exists()  # a dry run writes nothing, not even the workdir
    assert main(["run", str(path)]) == 0
    assert sorted(p.name for p in (tmp_path / "work" / "corpus" / "multi-task-setup").iterdir()) == ["acted", "valence"]


@pytest.mark.slow
def test_a_relative_workdir_is_taken_once(tmp_path, monkeypatch):
    """`workdir: rel` from the current folder: `${corpus.dir}/data` is rel/corpus/data, not rel/rel/..."""
    text = PIPELINE
    path = _write(tmp_path, text, workdir="rel")
    monkeypatch.chdir(tmp_path)
    results = run_pipeline(load_pipeline("p.yaml"), echo=lambda _line: None)
    assert [r.status for r in results] == ["ran", "ran", "ran"]
    assert results[1].outputs == {"store": str(tmp_path / "rel" / "features")}
    assert (tmp_path / "rel" / "model.safetensors").is_file() and not (tmp_path / "rel" / "rel").exists()
    assert path.is_file()


@pytest.mark.slow
def test_the_demo_pipeline_s_own_workdir_is_in_the_current_folder(tmp_path, monkeypatch):
    demo = Path(__file__).resolve().parents[2] / "pipelines" / "demo.yaml"
    monkeypatch.chdir(tmp_path)
    pipeline = load_pipeline(demo)
    assert pipeline.workdir == tmp_path / "demo"
    corpus = pipeline.stage("corpus")
    assert stage_argv(corpus, pipeline.workdir, lambda ref: "")[-2:] == ["--", str(tmp_path / "demo" / "corpus")]
    assert main(["run", str(demo), "--dry-run"]) == 0
    assert list(tmp_path.iterdir()) == []


def test_a_dry_run_writes_nothing(tmp_path):
    path = _write(tmp_path)
    assert main(["run", str(path), "--dry-run"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml"]


HOLD = """
import sys, time
from pathlib import Path
from emonet.pipeline.lock import workdir_lock
with workdir_lock(Path(sys.argv[1]), Path(sys.argv[2])):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.mark.slow
def test_a_second_run_on_a_held_workdir_is_refused(tmp_path):
    """Another process holds the workdir, as a running `emonet run` does: a real `emonet run`
    on it is refused in one line, runs nothing; once the holder is gone, it runs."""
    path = _write(tmp_path)
    work = tmp_path / "work"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(work), str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        second = subprocess.run([sys.executable, "-m", "emonet", "run", str(path)], capture_output=True, text=True)
        err = " ".join(second.stderr.split())
        assert second.returncode == 2 and "Traceback" not in err, err
        assert f"{path}: workdir {work} is in use by another emonet run (pid {holder.pid})" in err
        assert sorted(p.name for p in work.iterdir()) == [".emonet-pipeline.lock"]  # nothing ran
    finally:
        holder.kill()
        holder.wait()
    with workdir_lock(work, path):  # the lock went with its holder (killed)
        pass


def test_a_workdir_that_is_a_file_is_one_line(tmp_path, capsys):
    path = _write(tmp_path)
    (tmp_path / "file").write_text("mine\n")
    assert main(["run", str(path), "--workdir", str(tmp_path / "file")]) == 2
    _one_line_refusal(capsys, path, "is a file, not a folder")
    assert (tmp_path / "file").read_text() == "mine\n"
    assert main(["run", str(path), "--workdir", str(tmp_path / "file" / "below")]) == 1
    _one_line_refusal(capsys, path, "a path component is a file", "nothing was run")


def test_a_read_only_workdir_is_one_line(tmp_path, capsys):
    path = _write(tmp_path)
    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        assert main(["run", str(path), "--workdir", str(ro / "work")]) == 1
        _one_line_refusal(capsys, path, "read-only file system", "nothing was run")
        assert main(["run", str(path), "--workdir", str(ro)]) == 1
        _one_line_refusal(capsys, path, "read-only file system")


TRAIN_AFTER = """
  train:
    command: train
    options:
      store: ${{features.store}}
      tasks: [acted, valence]
      {option}
"""


@pytest.mark.parametrize(
    ("option", "words"),
    [
        ("loss: nope", ["--loss 'nope' is not one of"]),
        ("optimizer: nope", ["--optimizer 'nope' is not one of"]),
        ("label-order: [acted=a,b]", ["--label-order"]),
    ],
)
def test_a_train_stage_s_whole_config_is_checked_before_the_first_stage_runs(tmp_path, capsys, option, words):
    # these values convert one by one; only the whole TrainConfig refuses them
    path = _write(tmp_path, PIPELINE + TRAIN_AFTER.replace("{option}", option))
    assert main(["run", str(path)]) == 2
    _one_line_refusal(capsys, path, "stage 'train'", *words)
    assert not (tmp_path / "work" / "corpus").exists()  # the first stage did not run
