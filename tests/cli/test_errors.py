"""main() is the one place errors become output: an EmoNetError is one line and its exit code,
a usage error one line naming the help to read, and anything else is a bug that keeps its traceback."""

import subprocess
import sys

import pytest

import emonet.store
from emonet.cli.app import main
from emonet.errors import StoreCorruptError, UnknownTaskError


def _emonet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emonet", *args], capture_output=True, text=True, timeout=120)


def test_emonet_error_is_one_line_with_its_exit_code(tmp_path, capsys):
    assert main(["info", str(tmp_path / "no-store")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no-store" in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    ("exc", "code"), [(StoreCorruptError("s/x: checksum mismatch"), 3), (UnknownTaskError("no task 'q'"), 2)]
)
def test_each_emonet_error_keeps_its_exit_code(tmp_path, monkeypatch, capsys, exc, code):
    def broken(path):
        raise exc

    monkeypatch.setattr(emonet.store, "open_store", broken)
    assert main(["info", str(tmp_path)]) == code
    assert capsys.readouterr().err.strip() == f"error: {exc}"


@pytest.mark.parametrize("exc", [KeyError("bug"), OSError(28, "No space left on device"), RuntimeError("bug")])
def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch, exc):
    """KeyError and OSError are no longer turned into user errors: only EmoNetError is."""

    def broken(path):
        raise exc

    monkeypatch.setattr(emonet.store, "open_store", broken)
    with pytest.raises(type(exc)):
        main(["info", str(tmp_path)])


@pytest.mark.slow
def test_console_script_shows_both_sides(tmp_path):
    bad = _emonet("info", str(tmp_path / "no-store"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    code = (
        "import sys, emonet.store\n"
        "def broken(path): raise KeyError('a bug')\n"
        "emonet.store.open_store = broken\n"
        "from emonet.cli.app import main\n"
        f"sys.exit(main(['info', {str(tmp_path)!r}]))\n"
    )
    bug = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert bug.returncode == 1 and "Traceback" in bug.stderr and "KeyError: 'a bug'" in bug.stderr


@pytest.mark.parametrize(
    ("argv", "needles", "help_of"),
    [
        (["extract", "-s", "s", "-dp", "d", "--format", "zar"], ["'zar'", "'zarr'", "'webdataset'"], "emonet extract"),
        (["extract", "-s", "s", "-dp", "d", "--codec", "zstd"], ["--codec", "'zstd3'", "'lz4'"], "emonet extract"),
        (["extract", "-s", "s", "-dp", "d", "--device", "gpu"], ["'gpu'", "'cpu'", "'cuda'"], "emonet extract"),
        (["extract", "-s", "s", "-dp", "d", "-w", "2"], ["-w"], "emonet extract"),
        (["extract", "-dp", "d"], ["--store"], "emonet extract"),
        (
            ["init-model", "m", "-s", "s", "--mode", "scrach"],
            ["'scrach'", "'scratch'", "'adapters'"],
            "emonet init-model",
        ),
        (["init-model", "m", "-s", "s", "--model", "cnm"], ["'cnm'", "'fusion'"], "emonet init-model"),
        (["init-model", "m", "-s", "s", "--adapter-type", "x"], ["'parallel'", "'series'"], "emonet init-model"),
        (["init-model", "m", "-s", "s", "-c", "transformer"], ["'avgpool'", "'attention'"], "emonet init-model"),
        (["extrct"], ["extrct", "extract"], "emonet"),
    ],
)
def test_usage_errors_are_one_line_naming_the_valid_values_and_the_help(tmp_path, capsys, argv, needles, help_of):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert all(n in err for n in needles) and f"see '{help_of} --help'" in err, err
    assert not (tmp_path / "s").exists() and not (tmp_path / "m").exists()


def test_help_lists_the_choices(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # one row per option in rich's help
    assert main(["extract", "--help"]) == 0
    text = capsys.readouterr().out
    assert "zarr|webdataset" in text and "zstd3|lz4|none" in text and "cpu|cuda" in text and "-j" in text
    assert main(["init-model", "--help"]) == 0
    text = capsys.readouterr().out
    for values in ("cnn|rnn|fusion", "parallel|series|none", "avgpool|attention|FCNAttention", "scratch|finetune"):
        assert values in text, values


def test_bare_emonet_prints_the_help():
    proc = _emonet()
    assert proc.returncode == 2 and "Usage: emonet" in proc.stdout and "extract" in proc.stdout
    assert "error" not in proc.stderr and "Traceback" not in proc.stderr


def test_cli_choices_match_the_library():
    """The CLI's choices are the library's (read from modules that do not import torch)."""
    from emonet.cli import extract as extract_cli
    from emonet.cli import model_options as mo
    from emonet.models import MODES
    from emonet.models.config import ADAPTER_TYPES, CLASSIFIERS, MODEL_TYPES
    from emonet.store.backends import BACKENDS
    from emonet.store.codec import CODECS

    assert tuple(extract_cli.STORE_CODECS) == tuple(CODECS)
    assert tuple(mo.MODES) == tuple(MODES) and tuple(mo.MODEL_TYPES) == tuple(MODEL_TYPES)
    assert tuple(mo.CLASSIFIERS) == tuple(CLASSIFIERS) and tuple(mo.ADAPTER_TYPES) == tuple(ADAPTER_TYPES)
    assert tuple(extract_cli.STORE_FORMATS) == tuple(BACKENDS)


@pytest.mark.parametrize("given", ["FCNAttention", "fcnattention", "FCNATTENTION", "Attention", "attention"])
def test_classifier_takes_the_seeds_name_in_any_case(given):
    import typer

    from emonet.cli import model_options as mo
    from emonet.cli.app import app

    command = typer.main.get_command(app).commands["init-model"]
    ctx = command.make_context("init-model", ["m.safetensors", "-s", "store", "-c", given])
    cfg = mo.model_config("cnn", 1, 4, 1, "0", ctx.params["classifier"], False, "parallel")
    assert cfg.classifier == "attention"


CLOSED_PIPE_PROBE = """
import os, sys
import typer
from emonet.cli.app import app, main

def commands(group, prefix):
    for name, cmd in sorted(getattr(group, "commands", {}).items()):
        yield from commands(cmd, prefix + [name]) if hasattr(cmd, "commands") else [prefix + [name]]

keep = os.dup(1)
for argv in [[]] + list(commands(typer.main.get_command(app), [])):
    r, w = os.pipe()
    os.close(r)  # the reader has gone before the first byte, like `| head` that has its lines
    os.dup2(w, 1)
    os.close(w)
    code = main(argv + ["--help"])
    os.dup2(keep, 1)
    print(" ".join(argv) or "emonet", code, flush=True)
"""


@pytest.mark.slow
def test_help_into_a_closed_pipe_exits_141_without_a_word():
    """`emonet CMD --help | head`: every command, the reader gone before the first byte."""
    proc = subprocess.run([sys.executable, "-c", CLOSED_PIPE_PROBE], capture_output=True, text=True, timeout=300)
    assert proc.stderr == "", proc.stderr
    results = dict(line.rsplit(" ", 1) for line in proc.stdout.splitlines())
    assert len(results) >= 12 and {"train", "predict", "task export"} <= set(results), results
    assert set(results.values()) == {"141"}, results
