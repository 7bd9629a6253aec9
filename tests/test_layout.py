"""The product's layout, as DESIGN.md states it: one job per module and none over 400 lines, no
import cycle (imports inside functions count), billing never imports orders (orders plugs into
billing through registries), and nothing of the product imports the emulator."""

from __future__ import annotations

import pytest

from tests import layout

PRODUCT = ("billing", "orders", "config")
MAX_LINES = 400


def product(*, migrations: bool = True):
    return layout.modules(layout.ROOT, PRODUCT, migrations=migrations)


def test_no_module_is_over_400_lines():
    sizes = layout.sizes(product(migrations=False))
    assert len(sizes) > 50, "the product's modules were not found"
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_the_product_has_no_import_cycle():
    graph = layout.import_graph(product(migrations=False))
    assert graph["orders.handlers"] >= {"billing.webhooks.registry"}  # the graph is read
    cycle = layout.find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_billing_never_imports_orders():
    found = product()
    imports = {
        name: sorted(t for t in layout.imported_names(name, path) if t.split(".")[0] == "orders")
        for name, path in found.items()
        if name.startswith("billing")
    }
    assert {name: targets for name, targets in imports.items() if targets} == {}


def test_nothing_of_the_product_imports_the_emulator():
    imports = {
        name: sorted(
            t for t in layout.imported_names(name, path) if t.split(".")[0] == "fakestripe"
        )
        for name, path in product().items()
    }
    assert {name: targets for name, targets in imports.items() if targets} == {}


@pytest.mark.parametrize(
    ("files", "broken"),
    [
        ({"billing/a.py": "def f():\n    from orders import x\n"}, "billing.a"),
        ({"billing/a.py": "import orders.models\n"}, "billing.a"),
        ({"billing/a.py": "from billing import b\n"}, None),
    ],
)
def test_the_layering_check_can_fail(tmp_path, files, broken):
    for relative, text in {"billing/__init__.py": "", "orders/__init__.py": "", **files}.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    found = layout.modules(tmp_path, ["billing", "orders"])
    offenders = {
        name
        for name, path in found.items()
        if name.startswith("billing")
        and any(t.split(".")[0] == "orders" for t in layout.imported_names(name, path))
    }
    assert offenders == ({broken} if broken else set())
