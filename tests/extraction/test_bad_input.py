"""Bad input: one clear line naming the file or row, exit code 2, no traceback, and the
existing store unchanged. --skip-bad skips instead, and records what it skipped."""

import subprocess
import sys

import numpy as np
import pytest

from emonet.cli.app import main
from emonet.store import open_store
from tests.helpers import make_task, tree_digest, write_wav


def _row_of(csv_path, key):
    for i, line in enumerate(csv_path.read_text().splitlines(), start=1):
        if line.startswith(key + ","):
            return i
    raise AssertionError(key)


def _break_missing(data, csvs):
    key = csvs["train"].read_text().splitlines()[2].split(",")[0]
    (data / key).unlink()
    return csvs["train"], f"row {_row_of(csvs['train'], key)}", "file not found"


def _break_corrupt(data, csvs):
    key = csvs["devel"].read_text().splitlines()[1].split(",")[0]
    (data / key).write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200)))
    return csvs["devel"], "row 2", "unreadable or corrupt"


def _break_not_audio(data, csvs):
    key = csvs["test"].read_text().splitlines()[3].split(",")[0]
    (data / key).write_text("this is not audio at all\n")
    return csvs["test"], "row 4", "unreadable or corrupt"


def _break_empty_wav(data, csvs):
    key = csvs["train"].read_text().splitlines()[1].split(",")[0]
    write_wav(data / key, seconds=0)
    return csvs["train"], "row 2", "empty audio"


def _break_truncated(data, csvs):
    key = csvs["train"].read_text().splitlines()[3].split(",")[0]
    blob = (data / key).read_bytes()
    (data / key).write_bytes(blob[: len(blob) // 2])
    return csvs["train"], "row 4", "truncated audio"


def _break_no_header(data, csvs):
    lines = csvs["train"].read_text().splitlines()
    csvs["train"].write_text("\n".join(lines[1:]) + "\n")
    return csvs["train"], "line 1", "add the header line 'file,label'"


def _break_wrong_columns(data, csvs):
    lines = csvs["devel"].read_text().splitlines()
    csvs["devel"].write_text("\n".join(["path,emotion"] + lines[1:]) + "\n")
    return csvs["devel"], "line 1", "'file' column"


def _break_empty_csv(data, csvs):
    csvs["test"].write_text("")
    return csvs["test"], "", "csv is empty"


def _break_duplicate(data, csvs):
    lines = csvs["train"].read_text().splitlines()
    csvs["train"].write_text("\n".join(lines + [lines[3]]) + "\n")
    return csvs["train"], f"row {len(lines) + 1}", "duplicates row 4"


def _break_escape(data, csvs):
    outside = data.parent / "outside.wav"
    write_wav(outside)
    lines = csvs["devel"].read_text().splitlines()
    csvs["devel"].write_text("\n".join(lines + ["../outside.wav,a"]) + "\n")
    return csvs["devel"], f"row {len(lines) + 1}", "outside the data path"


def _break_unknown_label(data, csvs):
    lines = csvs["test"].read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",zzz"
    csvs["test"].write_text("\n".join(lines) + "\n")
    return csvs["test"], "row 3", "label 'zzz' does not occur in train.csv"


BREAKS = {
    f.__name__[7:]: f
    for f in [
        _break_missing,
        _break_corrupt,
        _break_not_audio,
        _break_empty_wav,
        _break_truncated,
        _break_no_header,
        _break_wrong_columns,
        _break_empty_csv,
        _break_duplicate,
        _break_escape,
        _break_unknown_label,
    ]
}


@pytest.fixture
def store_with_task(tmp_path):
    """A store already holding task 'keep', and a fresh task 't' to break."""
    data, keep = make_task(tmp_path, name="keep")
    store = tmp_path / "store"
    assert (
        main(
            [
                "extract",
                "--store",
                str(store),
                "-dp",
                str(data),
                "-t",
                "keep",
                "-tr",
                str(keep["train"]),
                "-q",
            ]
        )
        == 0
    )
    _, csvs = make_task(tmp_path, name="t")
    return store, data, csvs


def _args(store, data, csvs):
    return [
        "extract",
        "--store",
        str(store),
        "-dp",
        str(data),
        "-t",
        "t",
        "-tr",
        str(csvs["train"]),
        "-v",
        str(csvs["devel"]),
        "-te",
        str(csvs["test"]),
        "-q",
    ]


@pytest.mark.parametrize("name", list(BREAKS))
def test_bad_input_is_one_line_and_leaves_store_unchanged(store_with_task, capsys, name):
    store, data, csvs = store_with_task
    before = tree_digest(store, exclude=())
    csv_path, where, needle = BREAKS[name](data, csvs)
    rc = main(_args(store, data, csvs))
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert str(csv_path) in err and where in err and needle in err, err
    assert "Traceback" not in err
    assert tree_digest(store, exclude=()) == before
    assert open_store(store).tasks == ["keep"]


def test_missing_data_path_and_csv(tmp_path, capsys):
    data, csvs = make_task(tmp_path, partitions=("train",))
    assert (
        main(
            [
                "extract",
                "--store",
                str(tmp_path / "s"),
                "-dp",
                str(tmp_path / "nope"),
                "-t",
                "t",
                "-tr",
                str(csvs["train"]),
            ]
        )
        == 2
    )
    assert "nope: data path not found" in capsys.readouterr().err
    assert (
        main(
            [
                "extract",
                "--store",
                str(tmp_path / "s"),
                "-dp",
                str(data),
                "-t",
                "t",
                "-tr",
                str(tmp_path / "x.csv"),
            ]
        )
        == 2
    )
    assert "x.csv: csv file not found" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_console_script_prints_no_traceback(store_with_task):
    store, data, csvs = store_with_task
    _break_corrupt(data, csvs)
    proc = subprocess.run([sys.executable, "-m", "emonet", *_args(store, data, csvs)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("error: ") and "row 2" in proc.stderr


def test_skip_bad_skips_lists_and_records(store_with_task, capsys):
    store, data, csvs = store_with_task
    for name in ("missing", "corrupt", "duplicate", "escape", "unknown_label"):
        BREAKS[name](data, csvs)
    assert main(_args(store, data, csvs)[:-1] + ["--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "skipped 5 bad row(s)" in out and "file not found" in out and "outside the data path" in out
    s = open_store(store)
    train, devel, test = (s.partition("t", p) for p in ("train", "devel", "test"))
    assert len(train) == 7 and len(devel) == 7 and len(test) == 7  # 8 good rows each, one bad each (+ extra rows)
    reasons = [r["reason"] for p in (train, devel, test) for r in p.meta["skipped"]]
    assert len(reasons) == 5
    assert all(isinstance(r["row"], int) for p in (train, devel, test) for r in p.meta["skipped"])
    assert all(np.isfinite(x).all() for _, _, x in train)


def test_usage_errors(tmp_path, capsys):
    assert main(["extract", "--store", str(tmp_path / "s"), "-dp", str(tmp_path)]) == 2
    assert "name the input" in capsys.readouterr().err
    assert main(["extract", "--store", str(tmp_path / "s"), "-dp", str(tmp_path), "--tasks", "a", "b"]) == 2
    assert "--tasks needs --multi-task-setup" in capsys.readouterr().err
    assert (
        main(
            [
                "extract",
                "--store",
                str(tmp_path / "s"),
                "-dp",
                str(tmp_path),
                "-t",
                "x",
                "-tr",
                "a.csv",
                "--f-max",
                "9000",
            ]
        )
        == 2
    )
    assert "Nyquist" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "nostore")]) == 2
    assert "no feature store here" in capsys.readouterr().err
    for argv, needle in (
        (["extract", "--bogus"], "No such option: --bogus"),
        (["extract", "--store", "x"], "Missing option '--data-path'"),
        (["extract", "--store", "x", "-dp", "y", "--n-fft", "abc"], "Invalid value for '--n-fft'"),
        (["bogus"], "No such command"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and "--help" in err and len(err.splitlines()) == 1, err


def test_filesystem_errors_are_one_line(tmp_path, capsys):
    data, csvs = make_task(tmp_path, partitions=("train",))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert (
        main(
            [
                "extract",
                "--store",
                str(blocker / "store"),
                "-dp",
                str(data),
                "-t",
                "t",
                "-tr",
                str(csvs["train"]),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Not a directory" in err and str(blocker / "store") in err, err
