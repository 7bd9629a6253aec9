"""Refunds as records: each Stripe refund of an order's payment kept as an ``OrderRefund`` (unique
on its id, whoever made it: the console, Stripe's Dashboard, the API), and the order's refunded
amount and status derived from those records.

``refund_record`` takes a refund as the mirror has it now (the newest copy the ordering guard
kept) and sets its row to it; ``order_refund_sync`` does so for every refund of a charge. Both
run under the objects' mirror locks (handlers, the console after writing Stripe's answer,
reconcile), then take the order's lock: the same order every writer takes them in. Setting a
row to Stripe's latest state and deriving the order from its rows gives the same records
whatever the order and number of ``refund.*`` and ``charge.refunded`` events.

The order is the one whose own payment the charge is (``state.order_owning``, the one ownership
rule); a refund's metadata is never asked which order it is.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone
from djstripe.models import Charge, Refund

from billing.display import stripe_id, timestamp
from billing.money import format_amount
from orders.models import PAID_STATES, TRANSITIONS, Order, OrderPayment
from orders.records import ACTIVE, OrderRefund
from orders.services import state
from orders.services.state import K, S

logger = logging.getLogger(__name__)

R = OrderRefund.Status
# The metadata key a console refund carries: its row, found before the refund id is stored
# (a webhook may arrive before the console writes Stripe's answer).
REQUEST_KEY = "refund_request"
_STRIPE_STATUSES = frozenset({R.PENDING, R.REQUIRES_ACTION, R.SUCCEEDED, R.FAILED, R.CANCELED})


def charge_and_intent(refund: dict[str, Any]) -> tuple[str, str]:
    """A refund's (or a dispute's) charge and payment intent (older API versions name only the
    charge)."""
    charge_id = stripe_id(refund.get("charge")) or ""
    intent_id = stripe_id(refund.get("payment_intent")) or ""
    charge = refund.get("charge")
    if not intent_id and isinstance(charge, dict):
        intent_id = stripe_id(charge.get("payment_intent")) or ""
    if not intent_id and charge_id:
        intent_id = (
            Charge.objects.filter(id=charge_id).values_list("payment_intent_id", flat=True).first()
            or ""
        )
    return charge_id, intent_id


def _row_for(
    refund: dict[str, Any], intent_id: str, row_pk: int | None
) -> tuple[Order | None, OrderRefund | None]:
    """The refund's row and its order, locked; or the order owning its payment and no row yet.
    ``row_pk``: the console's row this refund was made for (it knows; an event asks the
    ownership rule)."""
    row = OrderRefund.objects.filter(refund_id=refund["id"]).only("order_id").first()
    if row is None and row_pk is not None:
        row = OrderRefund.objects.filter(pk=row_pk, refund_id="").only("order_id").first()
    if row is not None:
        order = Order.objects.select_for_update().get(pk=row.order_id)
        return order, OrderRefund.objects.get(pk=row.pk)
    order = state.order_owning(payment_intent_id=intent_id)
    if order is None:
        return None, None
    requested = str((refund.get("metadata") or {}).get(REQUEST_KEY) or "")
    if requested.isdigit():
        # The console's row of this very request, still waiting for Stripe's answer.
        row = order.refunds.filter(pk=int(requested), refund_id="", status=R.SENDING).first()
    return order, row


def refund_record(
    *,
    refund: dict[str, Any],
    source: str,
    event_id: str = "",
    actor=None,
    row_pk: int | None = None,
) -> str:
    """Set the refund's record to ``refund`` (as the mirror has it now) and derive its order's
    refunded amount and status. A refund that failed is flagged for support and the order
    returns to the state its other refunds leave it in. Returns what happened, in words."""
    if refund.get("object") != "refund" or refund.get("deleted"):
        return f"{refund.get('id')} is not a refund"
    charge_id, intent_id = charge_and_intent(refund)
    with transaction.atomic():
        order, row = _row_for(refund, intent_id, row_pk)
        if order is None:
            return f"refund {refund['id']} is no order's payment's; recorded, nothing to do"
        outcome = _apply(
            order=order, row=row, refund=refund, charge_id=charge_id, intent_id=intent_id,
            source=source, event_id=event_id, actor=actor,
        )  # fmt: skip
        derived = order_money_derive(order=order, source=source, event_id=event_id, actor=actor)
        return f"order {order.public_id}: {outcome}; {derived}"


def _apply(*, order, row, refund, charge_id, intent_id, source, event_id, actor) -> str:
    status = refund.get("status") or ""
    if status not in _STRIPE_STATUSES:
        status = R.PENDING  # a status this code does not know yet: money on its way
    if row is None:
        row = OrderRefund(
            order=order,
            origin=OrderRefund.Origin.STRIPE,
            source=source,
            event_id=event_id,
            payment=OrderPayment.objects.filter(payment_intent_id=intent_id).first()
            if intent_id
            else None,
        )
    before = (row.pk, row.status, row.amount if row.pk else None)
    row.refund_id = refund["id"]
    row.charge_id, row.payment_intent_id = charge_id, intent_id
    row.amount = int(refund.get("amount") or 0)
    row.currency = (refund.get("currency") or order.currency).lower()
    row.status = status
    row.reason = refund.get("reason") or ""
    row.failure_reason = refund.get("failure_reason") or ""
    row.refunded_at = row.refunded_at or timestamp(refund.get("created"))
    failed_now = status == R.FAILED and not row.flagged
    if failed_now:
        row.flagged = True
    row.save()
    money = format_amount(row.amount, row.currency)
    if failed_now:
        why = row.failure_reason.replace("_", " ") or "no reason given"
        state.note(
            order=order,
            source=source,
            event_id=event_id,
            actor=actor,
            kind=K.REFUND_FAILED,
            data={"amount": row.amount, "currency": row.currency},
            note=f"refund {row.refund_id} of {money} failed ({why}): flagged for support",
        )
        logger.error("order %s: refund %s failed (%s)", order.public_id, row.refund_id, why)
    if before == (row.pk, row.status, row.amount):
        return f"refund {row.refund_id} unchanged ({status})"
    return f"refund {row.refund_id} of {money} {status}"


def order_money_derive(*, order: Order, source: str, event_id: str = "", actor=None) -> str:
    """The order's refunded amount and status from its refund records (call under its lock).

    Refunds of the order's own payments count (unflagged, or rows of orders from before
    payments were recorded); a flagged payment's refunds give back money that never paid the
    order, and leave it as it is. Refunded in full when they reach what its own payments took;
    none left: back to paid (fulfilled, once it was)."""
    own = Q(payment=None) | Q(payment__flag=OrderPayment.Flag.NONE)
    refunded = (
        order.refunds.filter(own, status__in=ACTIVE).aggregate(total=Sum("amount"))["total"] or 0
    )
    paid = (
        order.payments.filter(
            status=OrderPayment.Status.SUCCEEDED, flag=OrderPayment.Flag.NONE
        ).aggregate(total=Sum("amount"))["total"]
        or order.amount_total
    )
    changed = refunded != order.amount_refunded
    order.amount_refunded = refunded
    target = order.status
    if order.status in PAID_STATES:
        if refunded >= paid:
            target = S.REFUNDED
        elif refunded:
            target = S.PARTIALLY_REFUNDED
        else:
            target = S.FULFILLED if order.fulfilled_at else S.PAID
    words = f"{format_amount(refunded, order.currency)} refunded of {format_amount(paid, order.currency)}"
    if target != order.status and target in TRANSITIONS[order.status]:
        state.transition(
            order=order, to_status=target, source=source, event_id=event_id, actor=actor,
            note=words,
        )  # fmt: skip
        changed = True
    elif changed:
        state.note(order=order, source=source, event_id=event_id, actor=actor, note=words)
    if changed:
        order.save(update_fields=["status", "amount_refunded", "updated_at"])
    return f"{order.status}, {words}"


def order_refund_sync(*, charge: dict[str, Any], source: str, event_id: str = "") -> str:
    """Every refund of ``charge`` recorded as the mirror has it now (``charge.refunded``, and
    reconcile's repair). The mirror's rows are read, not the charge's embedded copies: the
    ordering guard kept the newest copy of each refund, and Stripe embeds at most ten."""
    refunds = [
        row.stripe_data
        for row in Refund.objects.filter(charge_id=charge["id"]).order_by("created", "id")
    ]
    known = {data.get("id") for data in refunds}
    # One not mirrored as its own row (a charge written without the refunds expanded).
    refunds += [
        item
        for item in ((charge.get("refunds") or {}).get("data") or [])
        if item.get("id") not in known
    ]
    if not refunds:
        return f"charge {charge['id']}: no refunds"
    outcomes = [refund_record(refund=r, source=source, event_id=event_id) for r in refunds]
    return "; ".join(outcomes)


def refunds_adopt(*, payment_intent_id: str, source: str, event_id: str = "") -> list[str]:
    """Refunds mirrored before their order's payment was recorded (their events came first, so
    ``refund_record`` found no order): recorded now that the payment names its order. Called
    once a payment is recorded; indexed queries when there is nothing to adopt."""
    if not payment_intent_id:
        return []
    outcomes = []
    for charge in Charge.objects.filter(payment_intent_id=payment_intent_id).order_by("created"):
        ids = set(Refund.objects.filter(charge_id=charge.id).values_list("id", flat=True))
        if ids - set(
            OrderRefund.objects.filter(refund_id__in=ids).values_list("refund_id", flat=True)
        ):
            outcomes.append(
                order_refund_sync(charge=charge.stripe_data, source=source, event_id=event_id)
            )
    return outcomes


def refunds_resolve(*, actor, refund_ids: list[int], note: str = "") -> int:
    """Support has handled these failed refunds (contacted the customer, refunded another way):
    marked resolved, by whom and when, in each order's history. Needs the ``refund``
    permission. Returns how many were marked."""
    if not actor.has_perm("orders.refund"):
        raise PermissionDenied("Resolving failed refunds needs the refund permission.")
    marked = 0
    with transaction.atomic():
        wanted = OrderRefund.objects.filter(pk__in=refund_ids, flagged=True, resolved_at=None)
        order_ids = sorted(set(wanted.values_list("order_id", flat=True)))
        orders = {
            o.pk: o
            for o in Order.objects.select_for_update().filter(pk__in=order_ids).order_by("pk")
        }
        for row in wanted.order_by("order_id", "pk"):
            row.resolved_at, row.resolved_by = timezone.now(), actor
            row.save(update_fields=["resolved_at", "resolved_by", "updated_at"])
            state.note(
                order=orders[row.order_id],
                source="support console",
                actor=actor,
                note=f"failed refund {row.refund_id} marked resolved"
                + (f": {note}" if note else ""),
            )
            marked += 1
    return marked
