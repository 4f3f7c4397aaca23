"""The package's layering, read from the source with ``ast``: the library never imports the command line
(:mod:`apallm.commands`), and the modules' import-time imports have no cycle."""

from __future__ import annotations

import ast
import graphlib
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "apallm"
COMMANDS = "apallm.commands"
#: ``python -m apallm`` starts the command line: the one module outside it that may import it
ENTRY_POINT = "apallm.__main__"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def imports(module: str, *, import_time_only: bool) -> set[str]:
    """The modules ``module`` imports: ``import a.b`` names ``a.b``; ``from a import b`` names ``a`` and, when it is
    a module, ``a.b``; relative imports are resolved. With ``import_time_only``, the imports inside functions
    and under ``if TYPE_CHECKING:`` are left out, as they do not run when the module is imported."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module]))
    package = module if is_package(module) else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if import_time_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return
        if import_time_only and isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            found.add(node.args[0].value)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _is_dynamic_import(call: ast.Call) -> bool:
    """``importlib.import_module("apallm...")`` or ``__import__("apallm...")`` with a literal name."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    return (name in ("import_module", "__import__") and bool(call.args) and isinstance(call.args[0], ast.Constant)
            and isinstance(call.args[0].value, str))


def in_commands(module: str) -> bool:
    return module == COMMANDS or module.startswith(COMMANDS + ".")


def test_the_module_list_is_the_package():
    assert {"apallm", "apallm.commands", "apallm.commands._common", "apallm.batch.runner",
            "apallm.demo.app"} <= set(MODULES)
    assert not [m for m in MODULES if m.endswith("cli")], "commands live in apallm/commands/"


def test_no_library_module_imports_the_command_line():
    upward = {module: sorted(filter(in_commands, imports(module, import_time_only=False)))
              for module in MODULES if not in_commands(module) and module != ENTRY_POINT}
    assert {module: names for module, names in upward.items() if names} == {}


def test_the_import_time_imports_of_the_package_have_no_cycle():
    graph = {module: {name for name in imports(module, import_time_only=True) if name in MODULES} - {module}
             for module in MODULES}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


def test_the_checker_sees_upward_imports_inside_functions_and_cycles(tmp_path, monkeypatch):
    """The checks above can fail: a library module that imports the commands inside a function, and two modules
    that import each other, are found."""
    lib = tmp_path / "apallm"
    (lib / "commands").mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    (lib / "commands" / "__init__.py").write_text("")
    (lib / "a.py").write_text("from . import b\n\ndef f():\n    from apallm.commands import main\n")
    (lib / "b.py").write_text("import apallm.a\n")
    here = sys.modules[__name__]
    monkeypatch.setattr(here, "PACKAGE", lib)
    monkeypatch.setattr(here, "MODULES", {module_name(p): p for p in sorted(lib.rglob("*.py"))})
    assert "apallm.commands" in imports("apallm.a", import_time_only=False)
    assert imports("apallm.a", import_time_only=True) == {"apallm", "apallm.b"}
    try:
        test_the_import_time_imports_of_the_package_have_no_cycle()
    except AssertionError as exc:
        assert "apallm.a" in str(exc) and "apallm.b" in str(exc)
    else:
        raise AssertionError("the cycle apallm.a -> apallm.b -> apallm.a was not found")
