"""Demo data: a small catalog created in Stripe (the emulator in `make demo`), then mirrored.

Re-runnable: products carry ``metadata.demo_key`` and are looked up by it before creating.
"""

from __future__ import annotations

from typing import Any

from billing import stripe_api

DEMO_CATALOG: list[dict[str, Any]] = [
    {
        "key": "webhooks-guide",
        "download": "field-guide-to-stripe-webhooks.pdf",
        "name": "Field Guide to Stripe Webhooks (ebook)",
        "description": "Payment notifications that arrive late, twice or out of order, and how to handle them. PDF, download after paying.",
        "prices": [{"currency": "usd", "unit_amount": 1900}],
    },
    {
        "key": "ramen",
        "download": "tokyo-ramen-recipes.pdf",
        "name": "Tokyo Ramen Recipes (ebook)",
        "description": "Twelve bowls from Tokyo's neighbourhood shops, from shoyu to tsukemen. PDF, download after paying.",
        "prices": [{"currency": "jpy", "unit_amount": 1500}],
    },
    {
        "key": "stickers",
        "download": "sticker-pack.zip",
        "name": "Sticker pack (download)",
        "description": "Forty printable stickers for laptops and notebooks. ZIP of PNG files, download after paying.",
        "prices": [{"currency": "eur", "unit_amount": 350}],
    },
    {
        "key": "pro",
        "name": "Pro membership",
        "description": "Every new guide as it comes out, while you are a member. Cancel any time.",
        "prices": [
            {"currency": "usd", "unit_amount": 900, "recurring": {"interval": "month"}},
            {"currency": "usd", "unit_amount": 9000, "recurring": {"interval": "year"}},
        ],
    },
]


def demo_catalog_seed() -> int:
    """Create the demo products and prices in Stripe unless they exist; return how many new."""
    existing = {
        p.metadata.get("demo_key"): p
        for p in stripe_api.list_all(object_type="product")
        if p.metadata and p.metadata.get("demo_key")
    }
    created = 0
    for entry in DEMO_CATALOG:
        if entry["key"] in existing:
            _download_declare(existing[entry["key"]], entry)
            continue
        product = stripe_api.create(
            object_type="product",
            params={
                "name": entry["name"],
                "description": entry["description"],
                "metadata": _metadata(entry),
            },
            idempotency_key=stripe_api.idempotency_key("demo-product", entry["key"]),
        )
        for n, price in enumerate(entry["prices"]):
            stripe_api.create(
                object_type="price",
                params={"product": product.id, **price},
                idempotency_key=stripe_api.idempotency_key("demo-price", entry["key"], n),
            )
        created += 1
    return created


def _metadata(entry: dict[str, Any]) -> dict[str, str]:
    # A digital product names its file (``orders.downloads``); ``demo_downloads_write`` makes it.
    download = {"download": entry["download"]} if entry.get("download") else {}
    return {"demo_key": entry["key"], **download}


def _download_declare(product: Any, entry: dict[str, Any]) -> None:
    """A demo product from before downloads were delivered: its file named now."""
    wanted = _metadata(entry)
    if all((product.metadata or {}).get(k) == v for k, v in wanted.items()):
        return
    stripe_api.update(object_type="product", stripe_id=product.id, params={"metadata": wanted})
