"""The Dockerfile cannot drift from pyproject.toml: our machines have no docker engine, so
these checks read both files and hold them to each other."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _args(name: str) -> list[str]:
    return [rest for word, rest in _instructions() if word == name]


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _build_args() -> dict[str, str | None]:
    """ARG name -> default (None: no default)."""
    out = {}
    for rest in _args("ARG"):
        name, eq, default = rest.partition("=")
        out[name] = default if eq else None
    return out


def test_base_is_a_build_arg_defaulting_to_a_slim_python(project):
    # one file a user builds: FROM ${BASE}, BASE defaulting to the slim Python image a server pulls
    # (docker/smoke.sh passes a local Debian base with --build-arg BASE=...)
    (base,) = _args("FROM")
    assert base in ("${BASE}", "$BASE"), f"FROM should take the BASE build argument, got {base!r}"
    instructions = [word for word, _ in _instructions()]
    assert instructions[0] == "ARG" and _instructions()[0][1].startswith("BASE="), "ARG BASE=... must precede FROM"
    default = _build_args()["BASE"]
    match = re.fullmatch(r"python:(\d+\.\d+)(?:\.\d+)?-slim(?:-\w+)?", default or "")
    assert match, f"expected BASE to default to an official python:X.Y-slim image, got {default!r}"
    assert SpecifierSet(project["requires-python"]).contains(match.group(1) + ".0")


def test_installs_into_a_venv_with_python3():
    # a venv, so the base's own Python may be Debian's (externally managed) or the official image's
    runs = " ".join(_args("RUN"))
    assert re.search(r"python3 -m venv (\S+)", runs), "the image installs into a venv made by `python3 -m venv`"
    venv = re.search(r"python3 -m venv (\S+)", runs).group(1)
    env = " ".join(_args("ENV"))
    assert f"PATH={venv}/bin:" in env, "the venv's bin comes first on PATH (emonet, torchrun)"
    assert runs.index("python3 -m venv") < runs.index("pip install")


def test_build_args_are_not_secrets_baked_in():
    # PIP_CERT (a CA bundle for a proxy that re-signs TLS) is an ARG without a default, never an ENV
    args = _build_args()
    assert set(args) <= {"BASE", "PIP_CERT"}, args
    assert args.get("PIP_CERT") is None
    assert "PIP_CERT" not in " ".join(_args("ENV"))


def test_installs_the_project_with_its_own_pins(project):
    runs = " ".join(_args("RUN"))
    assert re.search(r"pip install (\S+ )*\.(\s|$|&)", runs), "the image must `pip install .` (pyproject's pins)"
    # at the versions the suite passed with: constraints.txt, copied into the image beside pyproject.toml
    install = re.search(r"pip install ([^&;]+)", runs).group(1).split()
    assert "--constraint=constraints.txt" in install, install
    assert any("constraints.txt" in shlex.split(rest)[:-1] for rest in _args("COPY")), "COPY constraints.txt"
    # any package named on a pip line must carry exactly pyproject's specifier
    pins = {Requirement(r).name.lower(): str(Requirement(r).specifier) for r in project["dependencies"]}
    for cmd in re.findall(r"pip install ([^&;]+)", runs):
        for word in shlex.split(cmd):
            if word.startswith("-") or word in (".", "constraints.txt"):
                continue
            req = Requirement(word)
            assert req.name.lower() in pins, f"{word}: not a dependency in pyproject.toml"
            assert str(req.specifier) == pins[req.name.lower()], f"{word}: pyproject pins {pins[req.name.lower()]}"


def test_entrypoint_is_the_console_script(project):
    (entry,) = _args("ENTRYPOINT")
    assert entry.startswith("["), "use the exec form so signals reach emonet"
    assert eval(entry) == list(project["scripts"])  # noqa: S307 (a JSON list literal)
    assert list(project["scripts"]) == ["emonet"]


def test_copied_files_exist_and_package_data_is_complete():
    copied = []
    for rest in _args("COPY"):
        words = [w for w in shlex.split(rest) if not w.startswith("--")]
        copied += words[:-1]
    for src in copied:
        assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
    assert "pyproject.toml" in copied and "emonet" in copied
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("readme")
    if readme:
        assert readme in copied, "pip install . needs the readme named in pyproject.toml"


def test_runs_as_non_root_with_volumes():
    users = _args("USER")
    assert users and users[-1] not in ("root", "0"), "the image must end as a non-root user"
    (volumes,) = _args("VOLUME")
    assert set(eval(volumes)) >= {"/data", "/stores", "/experiments"}  # noqa: S307


def test_dockerignore_keeps_the_copied_files():
    ignored = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln and not ln.startswith("#")}
    assert not ignored & {"emonet", "pyproject.toml", "README.md"}
