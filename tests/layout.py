"""Reading a code base's layout: its modules, their sizes, and the import graph between them.

The graph is read from the source with ``ast``, so an import inside a function (the usual way
to dodge a cycle) counts like one at the top. Imports under ``if TYPE_CHECKING:`` are left out:
they never run, so they cannot make a cycle at run time (they only name types).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path, packages: Iterable[str], *, migrations: bool = True) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            # a migrations package: an app's own, or one MIGRATION_MODULES names (*_migrations)
            parts = path.relative_to(root).parts
            if migrations or not any(part.endswith("migrations") for part in parts):
                found[module_name(path, root)] = path
    return found


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """Every import in ``name``'s file, wherever it is, relative ones resolved: ``(module,
    names)`` for ``from module import names``, ``(module, [])`` for ``import module``."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            found.append((base_name, [alias.name for alias in node.names]))
    return found


def imported_names(name: str, path: Path) -> set[str]:
    """Every dotted name ``name`` imports (``from x import y`` as ``x`` and ``x.y``)."""
    names = set()
    for module, members in imports(name, path):
        names.add(module)
        names.update(f"{module}.{member}" for member in members)
    return names


def import_graph(found: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ``found`` it imports. ``from package import module`` is an import
    of that module (the package's ``__init__`` runs first, but that is the package, not a
    dependency of it)."""
    known = set(found)

    def resolve(target: str) -> str:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target

    graph = {}
    for name, path in found.items():
        targets = set()
        for module, members in imports(name, path):
            submodules = [f"{module}.{m}" for m in members if f"{module}.{m}" in known]
            for target in submodules or [resolve(module)]:
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


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


def sizes(found: dict[str, Path]) -> dict[str, int]:
    return {name: len(path.read_text().splitlines()) for name, path in found.items()}
