"""Reads for the shop's pages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from djstripe.models import Charge, Invoice, Price, Product

from billing import selectors as billing_selectors
from billing import types
from billing.consts import ChargeStatus, InvoiceStatus
from billing.display import (
    Described,
    admin_url,
    describe,
    subscription_period_end,
    timestamp,
)
from billing.models import AuditEntry, InboundEvent
from orders import references, wording
from orders.models import CustomerSettings, Order, OrderHistory, OrderRefund

R = OrderRefund.Status


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


def order_refunds(*, order: Order) -> list[OrderRefund]:
    """The refunds Stripe has of the order's payments, oldest first, for the customer's page
    (requests awaiting approval, refused ones and canceled ones are support's, not theirs)."""
    shown = (R.PENDING, R.REQUIRES_ACTION, R.SUCCEEDED, R.FAILED)
    return list(order.refunds.filter(status__in=shown).order_by("created_at", "pk"))


def order_receipt_url(*, order: Order) -> str:
    """Stripe's page for what the customer paid, from the mirror (no Stripe call): the receipt
    of the order's charge, or for a subscription its latest paid invoice."""
    if order.payment_intent_id:
        # The successful one: a declined card before it left a failed charge on the same
        # payment intent, often within the same second.
        charge = (
            Charge.objects.filter(
                payment_intent_id=order.payment_intent_id, status=ChargeStatus.SUCCEEDED
            )
            .order_by("-created")
            .first()
        )
        return (charge.stripe_data.get("receipt_url") or "") if charge else ""
    if order.subscription_id:
        # Since API version 2025-03-31 an invoice names its subscription under parent.
        invoice = (
            Invoice.objects.filter(
                stripe_data__parent__subscription_details__subscription=order.subscription_id,
                stripe_data__status=InvoiceStatus.PAID,
            )
            .order_by("-created")
            .first()
        )
        return (invoice.stripe_data.get("hosted_invoice_url") or "") if invoice else ""
    return ""


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
    return SubscriptionSummary(
        id=order.subscription_id,
        status=data.get("status", ""),
        cancel_at_period_end=bool(data.get("cancel_at_period_end")),
        current_period_end=timestamp(subscription_period_end(data)),
        cancel_at=timestamp(data.get("cancel_at")),
    )


# --- The support console: finding an order and its whole story ------------------------------

ORDER_NUMBER = re.compile(r"[0-9a-fA-F]{8}")
# Stripe's invoice numbers: the account's prefix, a dash, a sequence ("A1B2C3D4-0001").
INVOICE_NUMBER = re.compile(r"[0-9A-Z]{3,12}-\d{4,}")


@dataclass(frozen=True)
class OrderSearch:
    """What a search term finds: a filter for ``Order``; ``nothing`` says so when the term was
    an id that no order is tied to."""

    query: Q
    nothing: str = ""


def order_search(*, term: str) -> OrderSearch | None:
    """The orders a support person means by ``term``; None for an empty term.

    Every branch is an exact (or, for an email, prefix) lookup through an index, so a search
    costs the same in a shop of any size:
    - an order id (``ord_…``) or the number its customer reads out (``3F9A0C21``), which may
      also be a username;
    - an email address, whatever its case, as ordered with or as the account has it now; its
      beginning followed by ``*`` (at least three characters);
    - any Stripe id tied to an order (``cs_ pi_ ch_ re_ du_ dp_ in_ sub_ cus_``, through the
      order references), an event's (``evt_``: its object's), or an invoice number;
    - otherwise a username, or the beginning of an email address.
    """
    term = term.strip()
    if not term:
        return None
    if term.startswith("ord_"):
        return OrderSearch(Q(public_id=term))
    if ORDER_NUMBER.fullmatch(term):
        return OrderSearch(
            Q(public_id__startswith=f"ord_{term.lower()}") | Q(user_id__in=_users_named(term))
        )
    if "@" in term or term.endswith("*"):
        return OrderSearch(_by_email(term))
    stripe_id = _stripe_id_of(term)
    if stripe_id is not None:
        tied = references.orders_tied(stripe_id=stripe_id)
        return OrderSearch(Q(pk__in=tied), "" if tied else f"No order is tied to {term}.")
    return OrderSearch(Q(user_id__in=_users_named(term)) | _by_email(f"{term}*"))


def accounts_search(*, term: str) -> Q | None:
    """Accounts by username, or by email (``email_lookup``), each through an index."""
    term = term.strip()
    if not term:
        return None
    by_email = billing_selectors.email_lookup(term)
    return by_email if term.endswith("*") else Q(username=term) | by_email


def _users_named(username: str) -> list[int]:
    return list(get_user_model().objects.filter(username=username).values_list("pk", flat=True))


def _by_email(term: str) -> Q:
    """Orders by the email they were placed with (exactly or by its beginning), or by their
    account's email (exactly)."""
    by_email = billing_selectors.email_lookup(term)
    if term.endswith("*"):
        return by_email
    users = get_user_model().objects.filter(by_email).values_list("pk", flat=True)
    return by_email | Q(user_id__in=list(users))


def _stripe_id_of(term: str) -> str | None:
    """The Stripe id ``term`` stands for: itself, an event's object, an invoice's number."""
    if term.startswith("evt_"):
        return (
            InboundEvent.objects.filter(pk=term).values_list("object_id", flat=True).first() or term
        )
    if billing_selectors.object_type_for_id(term) is not None:
        return term
    if INVOICE_NUMBER.fullmatch(term):
        return Invoice.objects.filter(stripe_data__number=term).values_list("id", flat=True).first()
    return None


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


# The order page's groups, in its order.
LINKED_TYPES = (
    "checkout.session",
    "payment_intent",
    "charge",
    "refund",
    "dispute",
    "customer",
    "subscription",
    "invoice",
)


def _linked_rows(order: Order) -> list[tuple[str, Any]]:
    """Every mirrored object tied to the order (its references, and its own links): one query
    for the ids, one per type for the rows, each by exact id."""
    tied = references.ids_tied(order=order)
    own = (
        ("checkout.session", order.checkout_session_id),
        ("payment_intent", order.payment_intent_id),
        ("customer", order.customer_id),
        ("subscription", order.subscription_id),
    )
    for object_type, stripe_id in own:
        if stripe_id:
            tied.setdefault(object_type, []).append(stripe_id)
    linked = []
    for object_type in LINKED_TYPES:
        if ids := tied.get(object_type):
            rows = types.model_for(object_type).objects.filter(id__in=set(ids))
            linked += [
                (object_type, row)
                for row in sorted(rows, key=lambda r: (r.created is None, r.created), reverse=True)
            ]
    return linked


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


def _history_title(entry: OrderHistory) -> str:
    """A status change in the words the customer reads too ("Paid → Complete"); a note that
    changed no status says the status it left."""
    to = wording.status_label(entry.to_status)
    if not entry.from_status:
        return f"Order placed · {to}"
    if entry.from_status == entry.to_status:
        return f"Note · {to}"
    return f"{wording.status_label(entry.from_status)} → {to}"


def _customer_read(entry: OrderHistory) -> str:
    line = wording.history_line(entry)
    return f"the customer reads “{line}”" if line else ""


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
            title=_history_title(h),
            detail=" · ".join(
                part
                for part in (
                    _customer_read(h),
                    h.source,
                    h.actor.get_username() if h.actor else "",
                    h.note,
                )
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
