"""House style of the package: no function or method longer than 80 lines and no module longer
than 400 (small modules with one job each). The failure names every offender."""

import ast
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
