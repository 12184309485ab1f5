"""pyproject.toml keeps ranges, constraints.txt the exact versions the suite passed with
(scripts/venv.sh and docker/Dockerfile install with it): every runtime and test dependency
is pinned there, at a version its range admits."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"constraints.txt: '{line}' is not an exact pin name==version"
            pins[canonicalize_name(name)] = version
    return pins


def test_every_dependency_is_pinned_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins()
    for text in project["dependencies"] + project["optional-dependencies"]["test"]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"constraints.txt: no pin for {req.name} ({text} in pyproject.toml)"
        pinned = pins[name]
        assert req.specifier.contains(pinned, prereleases=True), f"constraints.txt: {name}=={pinned} not in {text}"


def test_torch_is_a_range_not_a_pin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch = next(Requirement(r) for r in project["dependencies"] if Requirement(r).name == "torch")
    assert not any(s.operator == "==" for s in torch.specifier), f"pyproject.toml pins {torch}; keep a range"
