"""House style of the package: no function or method longer than 80 lines and no module longer
than 400 (small modules with one job each), imports that follow the layering
(ARCHITECTURE.md) and sit at the top of modules. The failure names every offender."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "emonet"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 400


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _long_functions(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines = node.end_lineno - start + 1
            if lines > MAX_FUNCTION_LINES:
                out.append(f"{path.relative_to(root)}:{node.lineno} {node.name}() has {lines} lines")
    return out


def test_the_package_has_modules_to_check():
    assert len(_modules()) > 20 and PACKAGE / "cli" / "app.py" in _modules()


def test_no_function_longer_than_80_lines():
    offenders = [o for path in _modules() for o in _long_functions(path)]
    assert not offenders, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(offenders)


def test_no_module_longer_than_400_lines():
    offenders = []
    for path in _modules():
        n = len(path.read_text().splitlines())
        if n > MAX_MODULE_LINES:
            offenders.append(f"{path.relative_to(PACKAGE.parent)} has {n} lines")
    assert not offenders, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(offenders)


def test_the_check_finds_a_long_method_with_its_decorators(tmp_path):
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_FUNCTION_LINES - 1))
    module = tmp_path / "m.py"
    module.write_text(f"class C:\n    @staticmethod\n    def f():\n{body}\n\n    def g(self):\n        return 1\n")
    assert _long_functions(module, tmp_path) == [f"m.py:3 f() has {MAX_FUNCTION_LINES + 1} lines"]


def _local_first_party_imports(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """Imports of emonet modules inside functions whose line carries no reason (a comment)."""
    source = path.read_text()
    lines = source.splitlines()
    out = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            names = []
            if isinstance(inner, ast.ImportFrom) and inner.level == 0 and inner.module:
                names = [inner.module]
            elif isinstance(inner, ast.Import):
                names = [a.name for a in inner.names]
            if any(n == "emonet" or n.startswith("emonet.") for n in names):
                if "#" not in lines[inner.lineno - 1] and "#" not in lines[inner.end_lineno - 1]:
                    out.append(
                        f"{path.relative_to(root)}:{inner.lineno} imports {', '.join(names)} inside {node.name}()"
                    )
    return out


def test_function_local_imports_of_emonet_say_why():
    # Imports belong at the top of a module, where they show its dependencies; one inside a
    # function is allowed only to keep torch or zarr out of light commands, said on its line.
    offenders = [o for path in _modules() for o in _local_first_party_imports(path)]
    assert not offenders, "function-local emonet imports without a reason on the line:\n" + "\n".join(offenders)


def test_the_local_import_check_finds_one_without_a_reason(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "def f():\n    from emonet.store import open_store\n\n\ndef g():\n    import emonet.cli  # speed\n"
    )
    assert _local_first_party_imports(module, tmp_path) == ["m.py:2 imports emonet.store inside f()"]


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run(
        [sys.executable, "-c", code, "--no-cache", "--no-logo"], cwd=root, capture_output=True, text=True, timeout=120
    )


def test_the_layering_holds():
    result = _lint_imports(PACKAGE.parent)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_the_layering_check_fails_on_an_upward_import(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "emonet", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PACKAGE.parent / "pyproject.toml", tmp_path / "pyproject.toml")
    names = tmp_path / "emonet" / "store" / "names.py"
    names.write_text(names.read_text() + "\n\ndef _upward():\n    import emonet.training.trainer  # noqa: F401\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "emonet.store is not allowed to import emonet.training" in result.stdout
    assert "emonet.store.names -> emonet.training.trainer" in result.stdout
