"""Task names become folders in the store: only plain names are accepted, so nothing
outside the store is ever written or deleted."""

import pytest

from emonet.cli.app import main
from emonet.errors import ConfigError
from emonet.store import open_store
from emonet.store.names import check_task_name
from tests.helpers import make_task, tree_digest


@pytest.mark.parametrize(
    "name, rule",
    [
        ("../v", "is a path"),
        (".", "is a path"),
        ("..", "is a path"),
        ("/abs/dir", "is a path"),
        ("a/b", "is a path"),
        ("zarr.json", "store file"),
        ("emonet-store.yaml", "store file"),
        (".staging", "store file"),
        (" acted", "leading or trailing spaces"),
        ("acted ", "leading or trailing spaces"),
        ("", "empty"),
        (".hidden", "letters, digits"),
        ("a*b", "letters, digits"),
    ],
)
def test_bad_task_names_are_refused_with_the_rule(name, rule):
    with pytest.raises(ConfigError, match=rule):
        check_task_name(name)


@pytest.mark.parametrize("name", ["acted", "IEMOCAP_4class", "emo-db", "v1.2", "Émotion"])
def test_plain_names_pass(name):
    assert check_task_name(name) == name


@pytest.mark.parametrize("name", ["../v", ".", "zarr.json", "ABS", " acted"])
def test_extract_with_a_path_as_task_name_touches_nothing(tmp_path, capsys, name):
    data, csvs = make_task(tmp_path, name="keep", partitions=("train",))
    store = tmp_path / "s"
    assert main(["extract", "-s", str(store), "-dp", str(data), "-t", "keep", "-tr", str(csvs["train"]), "-q"]) == 0
    victim = tmp_path / "v"
    victim.mkdir()
    (victim / "mine.txt").write_text("a user's file")
    if name == "ABS":
        name = str(victim)
    before, outside = tree_digest(store, exclude=()), tree_digest(tmp_path / "v")
    rc = main(["extract", "-s", str(store), "-dp", str(data), "-t", name, "-tr", str(csvs["train"]), "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "task name" in err, err
    assert tree_digest(store, exclude=()) == before and tree_digest(tmp_path / "v") == outside
    assert open_store(store).tasks == ["keep"]
