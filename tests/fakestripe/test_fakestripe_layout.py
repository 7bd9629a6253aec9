"""The emulator's layout: small modules, and an import graph without cycles (read by
``tests.layout``: imports inside functions count, type-only ones do not)."""

from __future__ import annotations

import pytest

from tests import layout

PACKAGE = layout.ROOT / "fakestripe"
MAX_LINES = 500


def modules():
    return layout.modules(PACKAGE.parent, [PACKAGE.name])


def import_graph() -> dict[str, set[str]]:
    return layout.import_graph(modules())


find_cycle = layout.find_cycle


def test_no_module_is_over_500_lines():
    sizes = layout.sizes(modules())
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
