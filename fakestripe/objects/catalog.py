"""Customers, products, prices (and the legacy `plan` derived from a price)."""

from __future__ import annotations

from typing import Any


def customer(
    oid: str, now: int, *, email=None, name=None, description=None, phone=None, metadata=None
) -> dict[str, Any]:
    return {
        "id": oid,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": now,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": description,
        "discount": None,
        "email": email,
        "invoice_prefix": oid[-8:].upper().replace("_", "0"),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": metadata or {},
        "name": name,
        "next_invoice_sequence": 1,
        "phone": phone,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def product(
    oid: str,
    now: int,
    *,
    name: str,
    description=None,
    active=True,
    metadata=None,
    images=None,
    url=None,
    unit_label=None,
    statement_descriptor=None,
) -> dict:
    return {
        "id": oid,
        "object": "product",
        "active": active,
        "created": now,
        "default_price": None,
        "description": description,
        "images": images or [],
        "livemode": False,
        "marketing_features": [],
        "metadata": metadata or {},
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": statement_descriptor,
        "tax_code": None,
        "type": "service",
        "unit_label": unit_label,
        "updated": now,
        "url": url,
    }


def price(
    oid: str,
    now: int,
    *,
    product_id: str,
    currency: str,
    unit_amount: int,
    recurring: dict | None,
    active=True,
    metadata=None,
    nickname=None,
    lookup_key=None,
) -> dict[str, Any]:
    return {
        "id": oid,
        "object": "price",
        "active": active,
        "billing_scheme": "per_unit",
        "created": now,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": metadata or {},
        "nickname": nickname,
        "product": product_id,
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def plan_from_price(p: dict[str, Any]) -> dict[str, Any]:
    """The legacy `plan` Stripe still nests in subscription items, derived from the price."""
    recurring = p["recurring"] or {}
    return {
        "id": p["id"],
        "object": "plan",
        "active": p["active"],
        "amount": p["unit_amount"],
        "amount_decimal": p["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": p["created"],
        "currency": p["currency"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count", 1),
        "livemode": False,
        "metadata": p["metadata"],
        "meter": None,
        "nickname": p["nickname"],
        "product": p["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }
