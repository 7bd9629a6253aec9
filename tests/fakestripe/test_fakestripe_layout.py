"""The emulator's layout: small modules, and an import graph without cycles.

The graph is read from the source with `ast`, so an import inside a function (the usual way
to dodge a cycle) counts like one at the top. Imports under `if TYPE_CHECKING:` are left out:
they never run, so they cannot make a cycle at run time (they only name types).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fakestripe"
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` imports, wherever in the file the import is."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            # `from . import x` and `from .pkg import x` may name submodules
            targets = [base_name] + [f"{base_name}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_no_module_is_over_500_lines():
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert sizes, "no modules found"
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert graph["fakestripe.app"] >= {"fakestripe.checkout", "fakestripe.payments"}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_object_shapes_do_not_depend_on_behaviour():
    """objects/ builds Stripe-shaped dicts; it imports nothing else of the emulator."""
    graph = import_graph()
    shapes = {name for name in graph if name.startswith("fakestripe.objects")}
    outside = {name: graph[name] - shapes for name in shapes if graph[name] - shapes}
    assert outside == {}


@pytest.mark.parametrize(
    ("source", "cycle"),
    [
        # a function-level import closing a cycle counts
        (
            {"a": "from . import b\n", "b": "def f():\n    from .a import x\n"},
            ["fakestripe.a", "fakestripe.b", "fakestripe.a"],
        ),
        # a type-only import does not
        ({"a": "from . import b\n", "b": "if TYPE_CHECKING:\n    from .a import x\n"}, None),
    ],
)
def test_the_cycle_check_can_fail(tmp_path, monkeypatch, source, cycle):
    package = tmp_path / "fakestripe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, text in source.items():
        (package / f"{name}.py").write_text(text)
    monkeypatch.setitem(globals(), "PACKAGE", package)
    assert find_cycle(import_graph()) == cycle
