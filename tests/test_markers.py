"""The test suite's own rules: every marker a test file uses is registered in pyproject.toml (with
--strict-markers on, so that ``-m "not slow"`` selects what it says), and no test file imports from another test
module (shared fixtures and helpers live in tests/conftest.py)."""

import ast
from pathlib import Path

import tomllib

TESTS = Path(__file__).resolve().parent
BUILTIN_MARKERS = {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}


def pytest_options() -> dict:
    return tomllib.loads((TESTS.parent / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]


def registered_markers() -> set[str]:
    return {line.split(":")[0].split("(")[0].strip() for line in pytest_options().get("markers", [])}


def markers_used(source: str) -> set[str]:
    """NAME of every ``pytest.mark.NAME`` (and ``mark.NAME`` after ``from pytest import mark``) in ``source``."""
    used = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            owner = node.value
            if (isinstance(owner, ast.Attribute) and owner.attr == "mark"
                    and isinstance(owner.value, ast.Name) and owner.value.id == "pytest") \
                    or (isinstance(owner, ast.Name) and owner.id == "mark"):
                used.add(node.attr)
    return used


def imported_test_modules(source: str, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that ``source`` imports, however it spells the import."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            found.add(module)
            found |= {f"{module}.{alias.name}".lstrip(".") for alias in node.names}
    return {name.split(".")[-1] for name in found} & modules


def suite_files() -> list[Path]:
    return sorted(TESTS.rglob("*.py"))


def test_every_marker_a_test_file_uses_is_registered_and_strict():
    known = registered_markers() | BUILTIN_MARKERS
    unknown = sorted(f"{path.relative_to(TESTS)}: {name}" for path in suite_files()
                     for name in markers_used(path.read_text()) - known)
    assert not unknown, f"register these in [tool.pytest.ini_options] markers in pyproject.toml: {unknown}"
    assert {"slow", "browser"} <= registered_markers()
    assert "--strict-markers" in pytest_options()["addopts"].split()


def test_no_test_file_imports_from_another_test_module():
    modules = {path.stem for path in TESTS.glob("test_*.py")}
    crossing = sorted(f"{path.relative_to(TESTS)} imports {name}" for path in suite_files()
                      for name in imported_test_modules(path.read_text(), modules))
    assert not crossing, f"move what they share into tests/conftest.py: {crossing}"


def test_the_checks_see_markers_and_imports_in_every_spelling():
    source = ("import pytest\nfrom pytest import mark\nimport tests.test_a\nfrom test_b import x\n"
              "from tests import test_c\nfrom . import test_d\nfrom conftest import SR\nimport test_markers_x\n"
              "pytestmark = pytest.mark.slow\n@mark.sloow\n@pytest.mark.parametrize('a', [1])\ndef f(a): pass\n")
    assert markers_used(source) == {"slow", "sloow", "parametrize"}
    modules = {"test_a", "test_b", "test_c", "test_d", "test_e"}
    assert imported_test_modules(source, modules) == {"test_a", "test_b", "test_c", "test_d"}
