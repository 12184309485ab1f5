"""The README documents every command and option the CLI has (and no option it lacks), and
every command's --help shows an example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from emonet.cli.app import app

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands() -> dict[str, object]:
    """'extract', 'task export', ... -> click command."""
    out = {}
    for name, cmd in typer.main.get_command(app).commands.items():
        subs = getattr(cmd, "commands", None)
        if subs:
            out.update({f"{name} {sub}": c for sub, c in subs.items()})
        else:
            out[name] = cmd
    return out


def _section(command: str) -> str:
    text = README.read_text()
    match = re.search(rf"^### `emonet {re.escape(command)}`.*?$(.*?)(?=^##)", text, re.S | re.M)
    assert match, f"README.md has no '### `emonet {command}`' section"
    return match.group(1)


def _long_options(cmd) -> set[str]:
    return {o for p in cmd.params if p.param_type_name == "option" for o in p.opts if o.startswith("--")} - {"--help"}


@pytest.mark.parametrize("command", sorted(_commands()))
def test_readme_documents_every_option(command):
    cmd = _commands()[command]
    section = _section(command)
    missing = sorted(o for o in _long_options(cmd) if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", section))
    assert not missing, f"README's emonet {command} section lacks {missing}"
    table_options = set(re.findall(r"^\| `(--[a-z0-9-]+)", section, re.M))
    stale = sorted(table_options - _long_options(cmd))
    assert not stale, f"README's emonet {command} section names options the command does not have: {stale}"


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_help_shows_an_example(command):
    assert "Example:" in (_commands()[command].help or ""), f"emonet {command} --help has no example"
