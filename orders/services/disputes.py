"""Disputes as records: each dispute (chargeback or inquiry) kept as an ``OrderDispute`` with its
evidence deadline, tied to the order whose own payment the charge is (``state.order_owning``,
the one ownership rule), and the order marked disputed while one is open.

``dispute_record`` sets the row to the dispute as the mirror has it now (every
``charge.dispute.*`` event re-fetches it), so any order and number of events leave the same
record; each change is a step in the order's timeline. Evidence is submitted in Stripe's
Dashboard; the console keeps a note (``dispute_note``, audited).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from djstripe.models import Charge, Dispute

from billing.console import audit
from billing.consts import DisputeStatus as D
from billing.display import stripe_id, timestamp
from billing.models import AuditEntry
from billing.money import format_amount
from orders.models import Order
from orders.records import OrderDispute
from orders.services import state

St = OrderDispute.State
NOTE_DISPUTE = "orders.note_orderdispute"
STATES = {
    D.NEEDS_RESPONSE: St.NEEDS_RESPONSE,
    D.WARNING_NEEDS_RESPONSE: St.NEEDS_RESPONSE,
    D.UNDER_REVIEW: St.UNDER_REVIEW,
    D.WARNING_UNDER_REVIEW: St.UNDER_REVIEW,
    D.WON: St.WON,
    D.LOST: St.LOST,
    D.WARNING_CLOSED: St.CLOSED,
    D.PREVENTED: St.CLOSED,
}
# What the order shows for its disputes' state (an open one wins over closed ones).
ORDER_MARK = {
    St.NEEDS_RESPONSE: Order.Disputed.OPEN,
    St.UNDER_REVIEW: Order.Disputed.OPEN,
    St.WON: Order.Disputed.WON,
    St.LOST: Order.Disputed.LOST,
    St.CLOSED: Order.Disputed.CLOSED,
}


def _intent_of(dispute: dict[str, Any], charge_id: str) -> str:
    intent = stripe_id(dispute.get("payment_intent")) or ""
    if not intent and charge_id:
        intent = (
            Charge.objects.filter(id=charge_id).values_list("payment_intent_id", flat=True).first()
            or ""
        )
    return intent


def _withdrawn(dispute: dict[str, Any]) -> int:
    """The disputed money withdrawn and not reinstated (fees apart), from its balance
    transactions (a withdrawal is negative, a reinstatement positive)."""
    moved = sum(int(t.get("amount") or 0) for t in dispute.get("balance_transactions") or [])
    return max(-moved, 0)


def dispute_record(*, dispute: dict[str, Any], source: str, event_id: str = "") -> str:
    """Set the dispute's record to ``dispute`` (as the mirror has it now), note what changed
    in its order's timeline, and mark the order. Returns what happened, in words."""
    if dispute.get("object") != "dispute" or dispute.get("deleted"):
        return f"{dispute.get('id')} is not a dispute"
    charge_id = stripe_id(dispute.get("charge")) or ""
    intent_id = _intent_of(dispute, charge_id)
    with transaction.atomic():
        row = OrderDispute.objects.filter(dispute_id=dispute["id"]).only("order_id").first()
        order = None
        if row is not None and row.order_id is not None:
            order = Order.objects.select_for_update().get(pk=row.order_id)
        elif intent_id:
            order = state.order_owning(payment_intent_id=intent_id)
        row = OrderDispute.objects.filter(dispute_id=dispute["id"]).first() or OrderDispute(
            dispute_id=dispute["id"]
        )
        steps = _apply(row, dispute, order, charge_id, intent_id)
        row.save()
        if order is None:
            return f"dispute {row.dispute_id} ({row.get_state_display()}) is no order's payment's"
        for step in steps:
            state.note(order=order, source=source, event_id=event_id, note=step)
        mark = order_dispute_derive(order=order)
        changed = "; ".join(steps) or "unchanged"
        return (
            f"order {order.public_id} {mark or 'not disputed'}: dispute {row.dispute_id} {changed}"
        )


def _apply(row: OrderDispute, dispute: dict[str, Any], order, charge_id, intent_id) -> list[str]:
    """Copy the dispute onto its row; return the steps a person would tell apart."""
    status = dispute.get("status") or ""
    new_state = STATES.get(status, St.NEEDS_RESPONSE)
    details = dispute.get("evidence_details") or {}
    case = ((dispute.get("payment_method_details") or {}).get("card") or {}).get("case_type")
    # A dispute recorded before its order's payment was (its events came first) is new to the
    # order when the order adopts it: its timeline tells it from the start.
    adopted = row.pk is not None and row.order_id is None and order is not None
    before = (None, None, 0) if adopted else (row.pk, row.state, row.funds_withdrawn)
    row.order = order or row.order
    row.charge_id, row.payment_intent_id = charge_id, intent_id
    row.amount = int(dispute.get("amount") or 0)
    row.currency = (dispute.get("currency") or "").lower()
    row.stripe_status = status
    row.state = new_state
    row.reason = dispute.get("reason") or ""
    row.inquiry = status.startswith("warning_") or case == "inquiry"
    row.due_by = timestamp(details.get("due_by"))
    # The list's sort key: only while evidence is due (the rest sort after, newest first).
    row.respond_by = row.due_by if new_state == St.NEEDS_RESPONSE else None
    row.charge_refundable = bool(dispute.get("is_charge_refundable"))
    row.funds_withdrawn = _withdrawn(dispute)
    row.created_in_stripe = timestamp(dispute.get("created"))
    if not row.open:
        row.closed_at = row.closed_at or timezone.now()
    money = format_amount(row.amount, row.currency)
    steps = []
    if before[0] is None:
        kind = "inquiry" if row.inquiry else "chargeback"
        due = f"; evidence due by {row.respond_by:%Y-%m-%d %H:%M} UTC" if row.respond_by else ""
        steps.append(
            f"dispute {row.dispute_id} opened: {kind} of {money} "
            f"({row.reason.replace('_', ' ') or 'no reason given'}){due}"
        )
    elif before[1] != row.state:
        steps.append(f"dispute {row.dispute_id} {row.get_state_display()} ({status})")
    if before[2] != row.funds_withdrawn:
        moved = format_amount(abs(row.funds_withdrawn - (before[2] or 0)), row.currency)
        steps.append(
            f"dispute {row.dispute_id}: {moved} withdrawn"
            if row.funds_withdrawn > (before[2] or 0)
            else f"dispute {row.dispute_id}: {moved} reinstated"
        )
    return steps


def disputes_adopt(*, payment_intent_id: str, source: str, event_id: str = "") -> list[str]:
    """Disputes recorded as no order's because their events came before the order's payment
    was recorded (Stripe sends events in any order; a dispute card disputes at once): recorded
    again, from the mirror, now that the payment names its order. Called once a payment is
    recorded; a few indexed queries when there is nothing to adopt."""
    if not payment_intent_id:
        return []
    orphans = OrderDispute.objects.filter(
        order__isnull=True, payment_intent_id=payment_intent_id
    ).values_list("dispute_id", flat=True)
    outcomes = []
    for dispute_id in list(orphans):
        data = Dispute.objects.filter(id=dispute_id).values_list("stripe_data", flat=True).first()
        if data:
            outcomes.append(dispute_record(dispute=data, source=source, event_id=event_id))
    return outcomes


def order_dispute_derive(*, order: Order) -> str:
    """The order's ``disputed`` mark from its disputes (call under its lock)."""
    rows = list(
        order.disputes.order_by("-created_in_stripe", "-pk").values_list("state", flat=True)
    )
    if any(s in (St.NEEDS_RESPONSE, St.UNDER_REVIEW) for s in rows):
        mark = Order.Disputed.OPEN
    else:
        mark = ORDER_MARK[rows[0]] if rows else Order.Disputed.NO
    if mark != order.disputed:
        order.disputed = mark
        order.save(update_fields=["disputed", "updated_at"])
    return order.get_disputed_display() if mark else ""


def dispute_note(*, actor, dispute_pk: int, note: str) -> OrderDispute:
    """Support's note on a dispute (what was sent, who is on it): kept here and audited; the
    evidence itself is submitted in Stripe's Dashboard."""
    if not actor.has_perm(NOTE_DISPUTE):
        raise PermissionDenied("Keeping notes on disputes needs its permission.")
    with transaction.atomic():
        row = OrderDispute.objects.select_for_update().get(pk=dispute_pk)
        before = row.note
        row.note, row.noted_by = note.strip(), actor
        row.save(update_fields=["note", "noted_by", "updated_at"])
        audit.entry(
            actor=actor,
            action=AuditEntry.Action.DISPUTE_NOTE,
            object_type="dispute",
            stripe_id=row.dispute_id,
            before={"note": before},
            after={"note": row.note},
            result=AuditEntry.Result.DONE if before != row.note else AuditEntry.Result.UNCHANGED,
            message=row.note[:200],
        )
        if row.order_id and before != row.note:
            order = Order.objects.get(pk=row.order_id)
            state.note(
                order=order,
                source="support console",
                actor=actor,
                note=f"note on dispute {row.dispute_id}: {row.note}",
            )
    return row


def disputes_due() -> int:
    """Disputes whose evidence is due (an indexed count, capped)."""
    return OrderDispute.objects.filter(state=St.NEEDS_RESPONSE).order_by()[:1000].count()
