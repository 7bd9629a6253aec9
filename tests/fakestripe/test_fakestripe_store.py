"""The store's indexes, without HTTP: creation order, holes, secondary indexes."""

from __future__ import annotations

from fakestripe.store import Store


def charge(object_id: str, customer: str | None) -> dict:
    return {"id": object_id, "object": "charge", "customer": customer, "created": 0}


def test_secondary_index_follows_puts_saves_and_removals():
    store = Store(indexed={"charge": ("customer",)})
    for n in range(6):
        store.put(charge(f"ch_{n}", "cus_a" if n % 2 else "cus_b"))
    index = store.index("charge")
    positions = index.matching("customer", "cus_a")
    assert [index.ids[p] for p in positions] == ["ch_1", "ch_3", "ch_5"]
    assert list(index.newest_first(None, positions)) == ["ch_5", "ch_3", "ch_1"]
    assert list(index.newest_first(index.pos["ch_5"], positions)) == ["ch_3", "ch_1"]
    assert list(index.oldest_first(index.pos["ch_1"], positions)) == ["ch_3", "ch_5"]
    moved = store.get("ch_3")
    moved["customer"] = "cus_b"
    store.save(moved)
    assert list(index.newest_first(None, index.matching("customer", "cus_a"))) == ["ch_5", "ch_1"]
    assert "ch_3" in index.newest_first(None, index.matching("customer", "cus_b"))
    store.unlist("ch_5")
    assert list(index.newest_first(None, index.matching("customer", "cus_a"))) == ["ch_1"]
    assert list(index.newest_first()) == ["ch_4", "ch_3", "ch_2", "ch_1", "ch_0"]


def test_unindexed_values_are_skipped():
    store = Store(indexed={"charge": ("customer",)})
    store.put(charge("ch_x", None))
    assert store.index("charge").by_value["customer"] == {}
