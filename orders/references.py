"""Every Stripe id the shop has seen, tied to its order: the console's one way from any id a
customer quotes to their order, and from an order to its Stripe objects, by exact, indexed
lookups (pretix's ``ReferencedStripeObject``), never by JSON paths or ``LIKE '%…%'``.

Kept on the one mirror write path: ``billing.mirror`` hands every batch of objects it writes to
``references_record`` (registered in ``OrdersConfig.ready``), inside the batch's transaction.
The objects of one purchase (a Checkout Session, its payment intent and charges, their refunds
and disputes; a subscription, its invoices, their payment intents and charges) name each other,
so within a batch they form groups, and each group is tied to
- the order its objects' link key names (``metadata.order_id``; an invoice's from its
  subscription's metadata; a Checkout Session's ``client_reference_id``), and
- the orders any of its ids is tied to already (a renewal's charge through its invoice's
  payment intent, a refund or a dispute through its charge).
Every id of the group is then tied to those orders, and so is the customer it names (a
customer has many orders, so it joins no group). An id tied for the first time ties the
charges, refunds and disputes the mirror already holds that point at it: an invoice written
after its charge brings the charge along. References are only ever added: an object keeps the orders
it was once tied to (a link key edited away still finds the old order too).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Max
from djstripe.models import (
    Charge,
    Dispute,
    Invoice,
    PaymentIntent,
    Refund,
    Session,
    Subscription,
)

from billing.display import order_ids, related_ids, stripe_id
from billing.selectors import object_type_for_id
from orders.models import Order, OrderPayment, OrderReference

# The Stripe types that make up a purchase.
PURCHASE_TYPES = frozenset(
    {"checkout.session", "payment_intent", "charge", "refund", "dispute", "invoice", "subscription"}
)


def _named_orders(data: dict[str, Any]) -> set[str]:
    """Public ids of the orders ``data`` names itself (its link key, an invoice's subscription
    metadata, a Payment Link session's ``client_reference_id``)."""
    return {value for value in order_ids(data) if value.startswith("ord_")}


class _Groups:
    """Union-find over Stripe ids: the purchases a batch holds."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, node: str) -> str:
        self.parent.setdefault(node, node)
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def join(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def references_record(objects: Iterable[dict[str, Any]]) -> None:
    """Tie the purchases in ``objects`` (a batch the mirror wrote) to their orders.

    A few queries per batch, whatever its size: the orders named, the references the batch's
    ids have already, the mirrored charges and refunds of ids tied for the first time, and one
    insert (``ON CONFLICT DO NOTHING``: concurrent batches tying the same id tie it once).
    """
    groups = _Groups()
    named: dict[str, set[str]] = {}  # group member -> public ids it names
    customers: dict[str, set[str]] = {}  # object id -> customers it names
    for data in objects:
        if data.get("object") not in PURCHASE_TYPES or data.get("deleted"):
            continue
        own = data["id"]
        groups.find(own)
        named[own] = _named_orders(data)
        for other in related_ids(data):
            if object_type_for_id(other) in PURCHASE_TYPES:
                groups.join(own, other)
        if customer := stripe_id(data.get("customer")):
            customers.setdefault(own, set()).add(customer)
    if not groups.parent:
        return
    public_ids = set().union(*named.values())
    by_public_id = (
        dict(Order.objects.filter(public_id__in=public_ids).values_list("public_id", "pk"))
        if public_ids
        else {}
    )
    every_customer = set().union(*customers.values()) if customers else set()
    existing = _tied(set(groups.parent) | every_customer)

    orders: dict[str, set[int]] = {}  # group root -> order pks
    for node in groups.parent:
        found = orders.setdefault(groups.find(node), set())
        found |= existing.get(node, set())
        found |= {by_public_id[p] for p in named.get(node, ()) if p in by_public_id}
    wanted: dict[str, set[int]] = {}
    for node in groups.parent:
        wanted[node] = set(orders[groups.find(node)])
    for own, names in customers.items():
        for customer in names:
            wanted.setdefault(customer, set()).update(orders[groups.find(own)])
    new = _new_ties(wanted, existing)
    _insert(new + _dependents_tied(new, in_batch=set(groups.parent)))


def _tied(stripe_ids: set[str]) -> dict[str, set[int]]:
    tied: dict[str, set[int]] = {}
    rows = OrderReference.objects.filter(stripe_id__in=stripe_ids).values_list(
        "stripe_id", "order_id"
    )
    for tied_id, order_pk in rows:
        tied.setdefault(tied_id, set()).add(order_pk)
    return tied


def _new_ties(wanted: dict[str, set[int]], existing: dict[str, set[int]]) -> list[tuple[str, int]]:
    return [
        (tied_id, order_pk)
        for tied_id, order_pks in wanted.items()
        for order_pk in order_pks - existing.get(tied_id, set())
    ]


# Mirrored rows that point at an object of their purchase: (model, its column, the type of what
# it points at). A charge written before the invoice that paid with its payment intent was
# tied to nothing then; it is tied when that payment intent is.
_DEPENDENTS = (
    (Charge, "payment_intent_id", "payment_intent"),
    (Refund, "charge_id", "charge"),
    (Dispute, "charge_id", "charge"),
)


def _dependents_tied(new: list[tuple[str, int]], *, in_batch: set[str]) -> list[tuple[str, int]]:
    """Ties for the mirrored rows outside the batch that point at ids tied for the first time
    (one query per kind, only when there are such ids); some may exist, and are skipped by
    the insert."""
    found: list[tuple[str, int]] = []
    ties = list(new)
    for model, column, points_at in _DEPENDENTS:
        orders_of: dict[str, set[int]] = {}
        for tied_id, order_pk in ties:
            if object_type_for_id(tied_id) == points_at:
                orders_of.setdefault(tied_id, set()).add(order_pk)
        if not orders_of:
            continue
        rows = model.objects.filter(**{f"{column}__in": orders_of}).exclude(id__in=in_batch)
        more = [
            (dependent, order_pk)
            for dependent, target in rows.values_list("id", column)
            for order_pk in orders_of[target]
        ]
        found += more
        ties += more  # a charge tied here ties its refunds next
    return found


def _insert(ties: list[tuple[str, int]]) -> None:
    if not ties:
        return
    # Sorted: concurrent batches take the unique index's row locks in one order.
    OrderReference.objects.bulk_create(
        [
            OrderReference(
                stripe_id=tied_id, object_type=object_type_for_id(tied_id) or "", order_id=order_pk
            )
            for tied_id, order_pk in sorted(set(ties))
        ],
        ignore_conflicts=True,
    )


# --- Reads ----------------------------------------------------------------------------------


def orders_tied(*, stripe_id: str) -> list[int]:
    """Primary keys of the orders ``stripe_id`` is tied to (one indexed lookup)."""
    return list(
        OrderReference.objects.filter(stripe_id=stripe_id).values_list("order_id", flat=True)
    )


def public_ids_tied(*, stripe_ids: list[str]) -> dict[str, list[str]]:
    """The public ids of the orders each of ``stripe_ids`` is tied to: a page of a console
    list at once (one indexed lookup, whatever the number of rows)."""
    tied: dict[str, list[str]] = {}
    rows = OrderReference.objects.filter(stripe_id__in=stripe_ids).values_list(
        "stripe_id", "order__public_id"
    )
    for tied_id, public_id in rows.order_by("stripe_id", "order_id"):
        tied.setdefault(tied_id, []).append(public_id)
    return tied


def ids_tied(*, order: Order) -> dict[str, list[str]]:
    """The Stripe ids tied to ``order``, by object type (one indexed lookup)."""
    tied: dict[str, list[str]] = {}
    rows = OrderReference.objects.filter(order=order).values_list("object_type", "stripe_id")
    for object_type, tied_id in rows:
        tied.setdefault(object_type, []).append(tied_id)
    return tied


def stripe_ids_tied(*, public_id: str) -> list[str]:
    """The Stripe ids tied to the order with this public id (its unique index, then ours)."""
    return list(
        OrderReference.objects.filter(order__public_id=public_id).values_list(
            "stripe_id", flat=True
        )
    )


# --- Filling them in for a shop that had orders before references existed --------------------

# Parents before the objects that name them, so each batch finds its group's ties in place.
FILL_MODELS = (Session, Subscription, Invoice, PaymentIntent, Charge, Refund, Dispute)
FILL_BATCH = 500


def references_fill(*, batch_size: int = FILL_BATCH, progress=None) -> int:
    """Tie every mirrored purchase object, and every order's own links and payments, to its
    order; return the references added. Reads in primary-key ranges of ``batch_size`` rows,
    each a plain read (no lock is taken on the tables read), and writes each batch's references
    in one short statement, so the shop keeps running. Safe to run again, or while the shop
    writes references itself (an existing reference is left as it is).

    ``progress(label, done, total)`` is called after each batch.
    """
    before = OrderReference.objects.count()
    for model in FILL_MODELS:
        label = model._meta.verbose_name_plural
        last = model.objects.aggregate(last=Max("djstripe_id"))["last"] or 0
        for start in range(0, last, batch_size):
            rows = model.objects.filter(
                djstripe_id__gt=start, djstripe_id__lte=start + batch_size
            ).values_list("stripe_data", flat=True)
            references_record(list(rows))
            if progress:
                progress(label, min(start + batch_size, last), last)
    _fill_from_orders(batch_size, progress)
    return OrderReference.objects.count() - before


def _fill_from_orders(batch_size: int, progress) -> None:
    """The ids orders and their payments hold themselves (a link key edited away in Stripe
    still leaves the order's own links)."""
    last = Order.objects.aggregate(last=Max("pk"))["last"] or 0
    for start in range(0, last, batch_size):
        ties = []
        window = {"pk__gt": start, "pk__lte": start + batch_size}
        for values in Order.objects.filter(**window).values_list(
            "pk", "checkout_session_id", "payment_intent_id", "customer_id", "subscription_id"
        ):
            ties += [(tied_id, values[0]) for tied_id in values[1:] if tied_id]
        payments = OrderPayment.objects.filter(
            **{f"order__{key}": value for key, value in window.items()}
        ).values_list(
            "order_id", "checkout_session_id", "payment_intent_id", "invoice_id", "subscription_id"
        )
        for values in payments:
            ties += [(tied_id, values[0]) for tied_id in values[1:] if tied_id]
        _insert(ties)
        if progress:
            progress("orders", min(start + batch_size, last), last)
