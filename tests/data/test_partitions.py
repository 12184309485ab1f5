import pytest

from emonet.data.partitions import class_list, multi_task_sources, read_partition_csv
from emonet.errors import EmoNetError
from tests.helpers import write_csv


def test_reads_rows_with_line_numbers(tmp_path):
    p = write_csv(tmp_path / "train.csv", [("a.wav", "x"), ("b.wav", "y")])
    pc = read_partition_csv(p, "train")
    assert [(r.line, r.file, r.label) for r in pc.rows] == [(2, "a.wav", "x"), (3, "b.wav", "y")]
    assert pc.labelled and not pc.problems and len(pc.sha256) == 64


@pytest.mark.parametrize(
    "content, needle",
    [
        ("", "csv is empty"),
        ("file,label\n", "no rows"),
        ("a.wav,x\nb.wav,y\n", "not a header with a 'file' column"),
        ("path,emotion\na.wav,x\n", "not a header with a 'file' column"),
        ("file\na.wav\n", "has no 'label' column"),
        ("file;label\na.wav;x\n", "separates columns with semicolons"),
        ("file\tlabel\na.wav\tx\n", "separates columns with tabs"),
    ],
)
def test_csv_level_errors_name_the_file_and_the_fix(tmp_path, content, needle):
    p = tmp_path / "train.csv"
    p.write_text(content)
    with pytest.raises(EmoNetError) as exc:
        read_partition_csv(p, "train")
    msg = str(exc.value)
    assert needle in msg and str(p) in msg and "\n" not in msg


def test_test_csv_without_label_is_unlabelled(tmp_path):
    p = write_csv(tmp_path / "test.csv", ["a.wav", "b.wav"], header="file")
    pc = read_partition_csv(p, "test")
    assert not pc.labelled and [r.label for r in pc.rows] == [None, None]


def test_row_problems_are_collected_not_raised(tmp_path):
    p = write_csv(tmp_path / "train.csv", [("a.wav", "x"), ("a.wav", "y"), ("b.wav", ""), (",x")])
    pc = read_partition_csv(p, "train")
    assert [r.file for r in pc.rows] == ["a.wav"]
    msgs = [str(e) for e in pc.problems]
    assert any("row 3" in m and "duplicates row 2" in m for m in msgs)
    assert any("row 4" in m and "empty label" in m for m in msgs)
    assert any("row 5" in m and "empty file name" in m for m in msgs)


def test_numeric_labels_sort_by_value():
    assert class_list(["10", "2", "1"]) == ["1", "2", "10"]
    assert class_list(["sad", "angry", "happy"]) == ["angry", "happy", "sad"]


def test_multi_task_setup_accepts_val_or_devel_and_lists_available_tasks(tmp_path):
    for task, val in (("a", "val.csv"), ("b", "devel.csv")):
        for name in ("train.csv", val, "test.csv"):
            write_csv(tmp_path / task / name, [("x.wav", "l")])
    srcs = multi_task_sources(tmp_path, ["a", "b"])
    assert [s.csvs["devel"].name for s in srcs] == ["val.csv", "devel.csv"]
    with pytest.raises(EmoNetError, match="available: a, b"):
        multi_task_sources(tmp_path, ["c"])
