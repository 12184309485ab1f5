"""Space-separated values after one list option (``--tasks a b c``), as in the original EmoNet's command line."""

import typer

from emonet.cli.app import app, main
from emonet.cli.argv import expand_list_options, list_option_names


def test_tasks_option_takes_space_separated_values():
    argv = ["extract", "--tasks", "a", "b", "c", "--store", "s"]
    assert expand_list_options(argv) == [
        "extract",
        "--tasks",
        "a",
        "--tasks",
        "b",
        "--tasks",
        "c",
        "--store",
        "s",
    ]
    assert expand_list_options(["--tasks=a,b"]) == ["--tasks", "a", "--tasks", "b"]
    assert expand_list_options(["-t", "a", "-tr", "x.csv"]) == ["-t", "a", "-tr", "x.csv"]


def test_only_the_commands_list_options_are_expanded():
    """-t is init-model's --tasks (a list) but extract's single --task: each command's own."""
    command = typer.main.get_command(app)
    assert set(list_option_names(command, ["init-model", "m.safetensors"])) == {"--tasks", "-t"}
    assert list_option_names(command, ["extract"]) == ("--tasks", "--folds")
    assert list_option_names(command, ["demo-data"]) == ("--tasks",)
    assert list_option_names(command, ["nope"]) == () and list_option_names(command, []) == ()
    argv = ["extract", "-t", "a", "b", "--tasks", "c", "d"]
    assert expand_list_options(argv, list_option_names(command, argv)) == [
        "extract",
        "-t",
        "a",
        "b",
        "--tasks",
        "c",
        "--tasks",
        "d",
    ]


def test_extract_task_takes_one_name(tmp_path, capsys):
    """--task is one name: a second one is refused by the parser in one line, not taken silently."""
    rc = main(["extract", "-s", str(tmp_path / "s"), "-dp", str(tmp_path), "-t", "a", "b", "-tr", "x.csv"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "(b)" in err and "emonet extract --help" in err, err
    assert not (tmp_path / "s").exists()
