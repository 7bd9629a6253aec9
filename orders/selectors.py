"""Reads for the shop's pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from djstripe.models import (
    Charge,
    Customer,
    Invoice,
    PaymentIntent,
    Price,
    Product,
    Refund,
    Session,
    Subscription,
)

from billing import display
from billing import selectors as billing_selectors
from billing.display import Described, admin_url, describe
from billing.models import AuditEntry, InboundEvent
from orders.models import Order, OrderHistory


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


# --- The support console: finding an order and its whole story ------------------------------


def order_search(*, term: str) -> Q | None:
    """Orders a Stripe id (``cs_ pi_ ch_ re_ cus_ sub_ in_``, or an ``evt_``) is tied to.

    Returns a filter for ``Order`` objects, or None when ``term`` is not such an id. Follows
    the order's own links (session, payment intent, customer, subscription) and, through the
    mirror, the order ids objects carry (``metadata.order_id``) and the objects they point to
    (a refund's charge, its payment intent, the invoice it paid, that invoice's subscription):
    a few queries, whatever the number of rows.
    """
    term = term.strip()
    if term.startswith("ord_"):
        return Q(public_id=term)
    if term.startswith("evt_"):
        event = InboundEvent.objects.filter(pk=term).only("object_id").first()
        term = event.object_id if event is not None else ""
    if not term or billing_selectors.object_type_for_id(term) is None:
        return None
    ids, public_ids = {term}, set()
    frontier = [term]
    for _hop in range(5):  # refund -> charge -> payment intent -> invoice -> subscription
        rows = billing_selectors.mirror_rows(stripe_ids=frontier)
        found = []
        for row in rows:
            data = {**(row.stripe_data or {}), "metadata": row.metadata or {}}
            public_ids.update(display.order_ids(data))
            found += display.related_ids(data)
        # A subscription's payment intent names no invoice; the invoice names it.
        intents = [row.id for row in rows if row.id.startswith("pi_")]
        found += billing_selectors.invoices_paid_by(intent_ids=intents)
        frontier = [stripe_id for stripe_id in dict.fromkeys(found) if stripe_id not in ids]
        ids.update(frontier)
        if not frontier:
            break
    return (
        Q(public_id__in=public_ids)
        | Q(checkout_session_id__in=ids)
        | Q(payment_intent_id__in=ids)
        | Q(customer_id__in=ids)
        | Q(subscription_id__in=ids)
    )


@dataclass(frozen=True)
class LinkedObject:
    """One Stripe object behind an order, as the order page lists it."""

    object_type: str
    row: Any
    described: Described
    last_synced: datetime | None

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def admin_url(self) -> str:
        meta = self.row._meta
        return admin_url(f"{meta.app_label}_{meta.model_name}", self.row.id)


def _linked_rows(order: Order) -> list[tuple[str, Any]]:
    """Every mirrored object tied to the order, by its links or ``metadata.order_id``."""
    tagged = Q(metadata__order_id=order.public_id)
    sessions = list(Session.objects.filter(Q(id=order.checkout_session_id) | tagged))
    subscriptions = list(Subscription.objects.filter(Q(id=order.subscription_id) | tagged))
    subscription_ids = [s.id for s in subscriptions]
    invoices = list(
        Invoice.objects.filter(
            Q(subscription_id__in=subscription_ids)
            # API versions since 2025-03-31 keep the subscription under parent
            | Q(stripe_data__parent__subscription_details__subscription__in=subscription_ids)
            | Q(stripe_data__parent__subscription_details__metadata__order_id=order.public_id)
        )
    )
    # (An invoice's payment_intent column holds dj-stripe's row id; its data holds Stripe's.)
    intent_ids = {order.payment_intent_id, *(s.payment_intent_id for s in sessions)}
    for invoice in invoices:
        related = display.related_ids(invoice.stripe_data or {})
        intent_ids.update(i for i in related if i.startswith("pi_"))
    intent_ids.discard(None)
    intents = list(PaymentIntent.objects.filter(Q(id__in=intent_ids) | tagged))
    charges = list(
        Charge.objects.filter(
            Q(payment_intent_id__in=[p.id for p in intents])
            | Q(invoice_id__in=[i.id for i in invoices])
            | tagged
        )
    )
    refunds = list(Refund.objects.filter(Q(charge_id__in=[c.id for c in charges]) | tagged))
    customers = list(Customer.objects.filter(id=order.customer_id)) if order.customer_id else []
    groups = [
        ("checkout.session", sessions),
        ("payment_intent", intents),
        ("charge", charges),
        ("refund", refunds),
        ("customer", customers),
        ("subscription", subscriptions),
        ("invoice", invoices),
    ]
    return [
        (object_type, row)
        for object_type, rows in groups
        for row in sorted(rows, key=lambda r: (r.created is None, r.created), reverse=True)
    ]


def order_stripe_objects(*, order: Order) -> list[LinkedObject]:
    """The order's Stripe objects with status, amount and last sync (a fixed number of queries)."""
    rows = _linked_rows(order)
    states = billing_selectors.sync_states(stripe_ids=[row.id for _, row in rows])
    return [
        LinkedObject(
            object_type=object_type,
            row=row,
            described=describe(object_type, row.stripe_data or {}, row.id),
            last_synced=billing_selectors.last_synced(row=row, state=states.get(row.id)),
        )
        for object_type, row in rows
    ]


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # "order", "event", "console"
    title: str
    detail: str
    outcome: str
    url: str


def order_timeline(
    *,
    order: Order,
    history: list[OrderHistory],
    events: list[InboundEvent],
    audits: list[AuditEntry],
) -> list[TimelineEntry]:
    """The order's transitions, its objects' events and console actions, newest first."""
    entries = [
        TimelineEntry(
            at=h.at,
            kind="order",
            title=f"{h.from_status or 'new'} → {h.to_status}".replace("_", " "),
            detail=" · ".join(
                part
                for part in (h.source, h.actor.get_username() if h.actor else "", h.note)
                if part
            ),
            outcome=h.event_id,
            url=admin_url("billing_inboundevent", h.event_id) if h.event_id else "",
        )
        for h in history
    ]
    entries += [
        TimelineEntry(
            at=e.created,
            kind="event",
            title=e.type,
            detail=f"{e.object_id} · {e.id}",
            outcome=f"{e.get_status_display()}{': ' + e.outcome if e.outcome else ''}",
            url=admin_url("billing_inboundevent", e.id),
        )
        for e in events
    ]
    entries += [
        TimelineEntry(
            at=a.at,
            kind="console",
            title=f"{a.get_action_display()} by {a.actor_name or '?'}",
            detail=f"{a.stripe_id}: {a.message}",
            outcome=a.get_result_display(),
            url=admin_url("billing_auditentry", a.pk),
        )
        for a in audits
    ]
    return sorted(entries, key=lambda entry: entry.at, reverse=True)
