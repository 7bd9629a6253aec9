"""The catalog: products and prices mirrored from Stripe."""

from __future__ import annotations

from billing import mirror, stripe_api


def catalog_sync() -> dict[str, int]:
    """Mirror every product and price from Stripe (inactive ones too, so they drop out here).

    Products first: a price's product is then already mirrored and dj-stripe does not fetch it
    again one by one.
    """
    counts = {"product": 0, "price": 0}
    for object_type in ("product", "price"):
        started = mirror.fetch_started()
        found = list(stripe_api.list_all(object_type=object_type))
        mirror.objects_write(objects=found, started_at=started)
        counts[object_type] = len(found)
    return counts
