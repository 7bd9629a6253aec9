"""Reads for the shop's pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from djstripe.models import Charge, Invoice, Price, Product, Refund

from orders import wording
from orders.models import CustomerSettings, Order


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
    """The customer's orders, newest first; orders replaced by a later one are left out."""
    return (
        Order.objects.filter(user=user, replaced_by__isnull=True)
        .prefetch_related("items")
        .order_by("-created_at")
    )


def order_get(*, user: AbstractBaseUser, public_id: str) -> Order:
    """The user's own order, or 404 (another user's order looks like no order at all)."""
    return get_object_or_404(
        Order.objects.select_related("subscription"), user=user, public_id=public_id
    )


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    text: str


def order_history(*, order: Order) -> list[HistoryLine]:
    """The order's history in the customer's words (internal entries left out)."""
    lines = []
    for entry in order.history.all():
        text = wording.history_line(entry)
        if text:
            lines.append(HistoryLine(at=entry.at, text=text))
    return lines


def customer_saved_time_zone(*, user: AbstractBaseUser) -> str:
    """The time zone the customer chose on their account page ("" when none)."""
    return (
        CustomerSettings.objects.filter(user=user).values_list("time_zone", flat=True).first() or ""
    )


def order_refunds(*, order: Order) -> list[Refund]:
    if not order.payment_intent_id:
        return []
    return list(
        Refund.objects.filter(charge__payment_intent_id=order.payment_intent_id).order_by("created")
    )


def order_receipt_url(*, order: Order) -> str:
    """Stripe's page for what the customer paid, from the mirror (no Stripe call): the receipt
    of the order's charge, or for a subscription its latest paid invoice."""
    if order.payment_intent_id:
        # The successful one: a declined card before it left a failed charge on the same
        # payment intent, often within the same second.
        charge = (
            Charge.objects.filter(payment_intent_id=order.payment_intent_id, status="succeeded")
            .order_by("-created")
            .first()
        )
        return (charge.stripe_data.get("receipt_url") or "") if charge else ""
    if order.subscription_id:
        # Since API version 2025-03-31 an invoice names its subscription under parent.
        invoice = (
            Invoice.objects.filter(
                stripe_data__parent__subscription_details__subscription=order.subscription_id,
                stripe_data__status="paid",
            )
            .order_by("-created")
            .first()
        )
        return (invoice.stripe_data.get("hosted_invoice_url") or "") if invoice else ""
    return ""


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if isinstance(value, int) else None


@dataclass(frozen=True)
class SubscriptionSummary:
    id: str
    status: str
    cancel_at_period_end: bool
    current_period_end: datetime | None
    cancel_at: datetime | None


def subscription_period_end(data: dict[str, Any]) -> int | None:
    """When a subscription's paid period ends (a Unix time), from Stripe's object."""
    items = (data.get("items") or {}).get("data") or [{}]
    # Since API version 2025-03-31 the period lives on the items, not the subscription.
    return data.get("current_period_end") or items[0].get("current_period_end")


def subscription_summary(*, order: Order) -> SubscriptionSummary | None:
    """The order's subscription as last mirrored from Stripe."""
    if order.subscription is None:
        return None
    data = order.subscription.stripe_data or {}
    return SubscriptionSummary(
        id=order.subscription_id,
        status=data.get("status", ""),
        cancel_at_period_end=bool(data.get("cancel_at_period_end")),
        current_period_end=_timestamp(subscription_period_end(data)),
        cancel_at=_timestamp(data.get("cancel_at")),
    )
