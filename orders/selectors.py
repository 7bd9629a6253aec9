"""Reads for the shop's pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from djstripe.models import Charge, Price, Product, Refund

from orders.models import Order


@dataclass(frozen=True)
class CatalogEntry:
    product: Product
    prices: list[Price]


def catalog() -> list[CatalogEntry]:
    """Active products with their active prices, from the mirror (one query)."""
    prices = (
        Price.objects.filter(active=True, product__active=True)
        .select_related("product")
        .order_by("product__name", "currency", "id")
    )
    entries: dict[str, CatalogEntry] = {}
    for price in prices:
        if price.stripe_data.get("unit_amount") is None:
            continue  # tiered or customer-chosen amounts are not sold here
        entry = entries.setdefault(price.product_id, CatalogEntry(product=price.product, prices=[]))
        entry.prices.append(price)
    return list(entries.values())


def order_list(*, user: AbstractBaseUser) -> QuerySet[Order]:
    return Order.objects.filter(user=user).prefetch_related("items").order_by("-created_at")


def order_get(*, user: AbstractBaseUser, public_id: str) -> Order:
    """The user's own order, or 404 (another user's order looks like no order at all)."""
    return get_object_or_404(
        Order.objects.select_related("subscription"), user=user, public_id=public_id
    )


def order_refunds(*, order: Order) -> list[Refund]:
    if not order.payment_intent_id:
        return []
    return list(
        Refund.objects.filter(charge__payment_intent_id=order.payment_intent_id).order_by("created")
    )


def order_receipt_url(*, order: Order) -> str:
    """The receipt of the order's successful charge, from the mirror (no Stripe call)."""
    if not order.payment_intent_id:
        return ""
    charge = (
        Charge.objects.filter(payment_intent_id=order.payment_intent_id)
        .order_by("-created")
        .first()
    )
    return (charge.stripe_data.get("receipt_url") or "") if charge else ""


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if isinstance(value, int) else None


@dataclass(frozen=True)
class SubscriptionSummary:
    id: str
    status: str
    cancel_at_period_end: bool
    current_period_end: datetime | None
    cancel_at: datetime | None


def subscription_summary(*, order: Order) -> SubscriptionSummary | None:
    """The order's subscription as last mirrored from Stripe."""
    if order.subscription is None:
        return None
    data = order.subscription.stripe_data or {}
    items = (data.get("items") or {}).get("data") or [{}]
    # Since API version 2025-03-31 the period lives on the items, not the subscription.
    period_end = data.get("current_period_end") or items[0].get("current_period_end")
    return SubscriptionSummary(
        id=order.subscription_id,
        status=data.get("status", ""),
        cancel_at_period_end=bool(data.get("cancel_at_period_end")),
        current_period_end=_timestamp(period_end),
        cancel_at=_timestamp(data.get("cancel_at")),
    )
