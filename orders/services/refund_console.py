"""Refunds from the support console: planned, checked, asked for, approved, sent to Stripe.

Rules:
- Who: ``orders.refund`` (Billing admin) refunds any amount and approves requests;
  ``orders.request_refund`` (Support) refunds up to ``REFUND_APPROVAL_THRESHOLDS`` for the
  currency at once, and asks for more: a Billing admin other than the one who asked approves
  it (two-person rule). A direct refund above the threshold without ``orders.refund`` is
  refused (``PermissionDenied``: the view answers 403), never turned into a request silently.
- What: no more than the payment has left after its refunds and the requests waiting for
  approval or Stripe, checked under the order's lock before Stripe is called; not while a
  chargeback stands on it (Stripe refuses those).
- Once: the form's one-time token names the request. Its row is made (under the order's lock)
  before Stripe is called, and Stripe's idempotency key is derived from the order and the
  token, so a double click, a retried POST or two approvals at once make one refund.
- Stripe first, then the mirror through the one write path, then the record from the mirror
  (``refunds.refund_record``), with the mirror's lock taken before the order's, as events do.
- Every refund, request, approval, rejection and refusal is in the audit log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from billing import mirror, stripe_api
from billing.console import audit
from billing.models import AuditEntry
from billing.money import format_amount
from orders.models import Order
from orders.records import OrderRefund
from orders.services import refund_targets, refunds, state
from orders.services.refund_targets import Target

R = OrderRefund.Status
A = AuditEntry.Action
REFUND = "orders.refund"
REQUEST_REFUND = "orders.request_refund"
SOURCE = "support console"
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
DISPUTED = (
    "This payment is charged back (a dispute stands): Stripe refunds no disputed charge. "
    "Respond to the dispute, or accept it, in Stripe's Dashboard. Nothing was sent to Stripe."
)


class RefundRefused(Exception):
    """The refund cannot be made as asked; ``message`` says why, for the person asking."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def threshold(currency: str) -> int | None:
    """What Support may refund at once in ``currency`` (minor units); None: every Support
    refund in it needs approval."""
    return settings.REFUND_APPROVAL_THRESHOLDS.get(currency.lower())


def needs_approval(actor, amount: int, currency: str) -> bool:
    """Whether ``actor`` must ask a Billing admin for this refund."""
    if actor.has_perm(REFUND):
        return False
    limit = threshold(currency)
    return limit is None or amount > limit


def may_refund(actor) -> bool:
    return actor.has_perm(REFUND) or actor.has_perm(REQUEST_REFUND)


@dataclass(frozen=True)
class Plan:
    """A refund as the confirmation states it."""

    order: Order
    target: Target
    amount: int
    reason: str
    note: str
    lines: list[dict[str, Any]] = field(default_factory=list)

    @property
    def currency(self) -> str:
        return self.target.currency

    @property
    def money(self) -> str:
        return format_amount(self.amount, self.currency)

    @property
    def left_after(self) -> str:
        return format_amount(self.target.remaining - self.amount, self.currency)


def refund_plan(
    *, order: Order, payment_id: int, amount: int | None, lines: dict[int, int], reason: str,
    note: str,
) -> Plan:  # fmt: skip
    """Check a refund as asked (by amount, by line, or in full when neither is given) against
    what the payment has left; raise ``RefundRefused`` saying why it cannot be made."""
    target = refund_targets.target_for(order=order, payment_id=payment_id)
    if target is None:
        raise RefundRefused("Choose a payment of this order that took money.")
    if target.disputed:
        raise RefundRefused(DISPUTED)
    chosen = []
    if lines:
        items = {item.pk: item for item in order.items.all()}
        for item_id, quantity in sorted(lines.items()):
            item = items.get(item_id)
            if item is None or not 0 < quantity <= item.quantity:
                raise RefundRefused("Refund at most the quantity ordered of each line.")
            chosen.append(
                {
                    "item": item.pk,
                    "description": item.description,
                    "quantity": quantity,
                    "amount": item.unit_amount * quantity,
                }
            )
        amount = sum(line["amount"] for line in chosen)
    elif amount is None:
        amount = target.remaining  # in full: what is left
    if reason not in ("", *OrderRefund.Reason.values) or reason == "expired_uncaptured_charge":
        raise RefundRefused("Choose one of Stripe's refund reasons.")
    if amount <= 0:
        raise RefundRefused(
            "Nothing is left to refund on this payment."
            if target.remaining <= 0
            else "Enter an amount above zero."
        )
    if amount > target.remaining:
        raise RefundRefused(
            f"{format_amount(amount, target.currency)} is more than this payment has left to "
            f"refund ({format_amount(target.remaining, target.currency)} of "
            f"{format_amount(target.amount, target.currency)}, after its refunds and the "
            "requests awaiting approval). Nothing was sent to Stripe."
        )
    return Plan(order=order, target=target, amount=amount, reason=reason, note=note, lines=chosen)


class _OverThreshold(Exception):
    def __init__(self, plan: Plan):
        super().__init__(plan.money)
        self.plan = plan


def order_refund(
    *,
    actor,
    order: Order,
    payment_id: int,
    amount: int | None,
    lines: dict[int, int],
    reason: str,
    note: str,
    request_token: str,
    ask: bool = False,
) -> OrderRefund:
    """Refund (or with ``ask``, request approval for) part or all of one of the order's
    payments. A second call with the same ``request_token`` returns the first call's row (and
    sends it again if Stripe's answer never came: the same idempotency key, one refund)."""
    if not TOKEN.match(request_token or ""):
        raise RefundRefused("The form has expired: open Refund again.")
    if not may_refund(actor):
        _refused(actor, order, None, "no refund permission")
        raise PermissionDenied("Refunds need the refund or request-refund permission.")
    try:
        with transaction.atomic():
            locked = Order.objects.select_for_update().get(pk=order.pk)
            row = locked.refunds.filter(request_token=request_token).first()
            if row is None:
                plan = refund_plan(
                    order=locked, payment_id=payment_id, amount=amount, lines=lines,
                    reason=reason, note=note,
                )  # fmt: skip
                approval = needs_approval(actor, plan.amount, plan.currency)
                if approval and not ask:
                    raise _OverThreshold(plan)
                row = _row_create(actor=actor, plan=plan, token=request_token, ask=approval)
    except RefundRefused as refused:
        _refused(actor, order, None, refused.message)
        raise
    except _OverThreshold as over:
        _refused(actor, order, over.plan, "a direct refund over the approval threshold")
        raise PermissionDenied(
            f"Refunds over {_limit_text(over.plan.currency)} need a Billing admin's approval."
        ) from None
    if row.status == R.SENDING:
        _send(actor=actor, row=row, action=A.REFUND)
        row.refresh_from_db()
    return row


def _limit_text(currency: str) -> str:
    limit = threshold(currency)
    return (
        format_amount(limit, currency) if limit is not None else f"any amount in {currency.upper()}"
    )


def _row_create(*, actor, plan: Plan, token: str, ask: bool) -> OrderRefund:
    target = plan.target
    row = OrderRefund.objects.create(
        order=plan.order,
        payment=target.payment,
        charge_id=target.charge_id,
        payment_intent_id=target.intent_id,
        amount=plan.amount,
        currency=target.currency,
        status=R.REQUESTED if ask else R.SENDING,
        reason=plan.reason,
        note=plan.note,
        lines=plan.lines,
        origin=OrderRefund.Origin.CONSOLE,
        request_token=token,
        requested_by=actor,
        approved_by=actor if actor.has_perm(REFUND) else None,
        source=SOURCE,
    )
    if ask:
        state.note(
            order=plan.order, source=SOURCE, actor=actor,
            note=f"refund of {plan.money} requested, awaiting approval" + _with(plan.note),
        )  # fmt: skip
        _audit(actor, row, A.REFUND_REQUEST, AuditEntry.Result.DONE, f"{plan.money} requested")
    return row


def _request_locked(refund_pk: int) -> tuple[Order, OrderRefund]:
    """A refund request read under its order's row lock (inside the caller's transaction):
    decisions on one order's refunds are taken one at a time."""
    row = OrderRefund.objects.filter(pk=refund_pk).only("order_id").first()
    if row is None:
        raise RefundRefused("No such refund request.")
    order = Order.objects.select_for_update().get(pk=row.order_id)
    return order, OrderRefund.objects.get(pk=refund_pk)


def refund_approve(*, actor, refund_pk: int, note: str = "") -> OrderRefund:
    """A Billing admin approves a request (not their own): it is checked again against what
    the payment has left now, then sent to Stripe. Approving twice sends it once."""
    if not actor.has_perm(REFUND):
        raise PermissionDenied("Approving refunds needs the refund permission.")
    with transaction.atomic():
        order, row = _request_locked(refund_pk)
        if row.status == R.REQUESTED:
            if row.requested_by_id == actor.pk:
                raise RefundRefused("Someone else must approve a refund you asked for.")
            target = refund_targets.target_for(
                order=order, payment_id=row.payment_id, excluding=row.pk
            )
            if target is not None and target.disputed:
                raise RefundRefused(DISPUTED)
            if target is None or row.amount > target.remaining:
                left = format_amount(target.remaining if target else 0, row.currency)
                raise RefundRefused(
                    f"The payment has only {left} left to refund now; reject this request and "
                    "ask for a new one."
                )
            row.status, row.approved_by, row.decided_at = R.SENDING, actor, timezone.now()
            row.decision_note = note
            row.save(update_fields=["status", "approved_by", "decided_at", "decision_note"])
            money = format_amount(row.amount, row.currency)
            state.note(
                order=order, source=SOURCE, actor=actor,
                note=f"refund request of {money} approved" + _with(note),
            )  # fmt: skip
        elif row.status != R.SENDING:
            return row  # decided already (approved and sent, or rejected)
    _send(actor=actor, row=row, action=A.REFUND_APPROVE)
    row.refresh_from_db()
    return row


def refund_reject(*, actor, refund_pk: int, note: str) -> OrderRefund:
    """A Billing admin declines a request: nothing is sent; the amount is free again."""
    if not actor.has_perm(REFUND):
        raise PermissionDenied("Rejecting refund requests needs the refund permission.")
    with transaction.atomic():
        order, row = _request_locked(refund_pk)
        if row.status != R.REQUESTED:
            return row
        row.status, row.rejected_by, row.decided_at = R.REJECTED, actor, timezone.now()
        row.decision_note = note
        row.save(update_fields=["status", "rejected_by", "decided_at", "decision_note"])
        money = format_amount(row.amount, row.currency)
        state.note(
            order=order, source=SOURCE, actor=actor,
            note=f"refund request of {money} rejected" + _with(note),
        )  # fmt: skip
        _audit(
            actor, row, A.REFUND_REJECT, AuditEntry.Result.DONE, f"{money} rejected{_with(note)}"
        )
    return row


def _send(*, actor, row: OrderRefund, action: str) -> None:
    """Stripe first (nothing locked), then the mirror and the record from Stripe's answer.

    A refusal from Stripe frees the amount (``not_sent``); no answer at all (a timeout, an
    outage) leaves the row ``sending``: sending it again (the same form, the same approval)
    uses the same key, so Stripe makes the refund once."""
    order = row.order
    params = {
        "payment_intent": row.payment_intent_id,
        "amount": row.amount,
        "metadata": {
            "order_id": order.public_id,
            "user_id": str(order.user_id),
            refunds.REQUEST_KEY: str(row.pk),
        },
    }
    if row.reason:
        params["reason"] = row.reason
    started = mirror.fetch_started()
    money = format_amount(row.amount, row.currency)
    try:
        answer = stripe_api.create(
            object_type="refund",
            params=params,
            idempotency_key=stripe_api.idempotency_key(
                "order-refund", order.public_id, row.request_token
            ),
        )
    except stripe_api.StripeAPIError as exc:
        if not exc.retryable and exc.kind in ("invalid_request", "card_error", "idempotency"):
            OrderRefund.objects.filter(pk=row.pk, status=R.SENDING).update(
                status=R.NOT_SENT, error=exc.message[:2000], updated_at=timezone.now()
            )
        _audit(actor, row, action, AuditEntry.Result.FAILED, f"{money}: {exc.message}")
        raise
    with transaction.atomic():
        # The mirror's lock first (inside object_write, held to the end of this block), then
        # the order's (inside refund_record): the order every writer takes them in.
        synced = mirror.object_write(data=answer, started_at=started)
        outcome = refunds.refund_record(
            refund=synced.obj, source=SOURCE, actor=actor, row_pk=row.pk
        )
    _audit(
        actor, row, action, AuditEntry.Result.DONE, f"{money} refunded as {answer.id}: {outcome}"
    )


def _with(note: str) -> str:
    return f": {note}" if note else ""


def _audit(actor, row: OrderRefund, action: str, result: str, message: str) -> None:
    """On the charge refunded (its page and the order's show it), with the request's row."""
    after = {
        "order": row.order.public_id if row.order_id else "",
        "refund_request": row.pk,
        "refund": row.refund_id or None,
        "amount": row.amount,
        "currency": row.currency,
        "reason": row.reason,
        "note": row.note,
    }
    audit.entry(
        actor=actor,
        action=action,
        object_type="charge" if row.charge_id else "payment_intent",
        stripe_id=row.charge_id or row.payment_intent_id,
        after=after,
        result=result,
        message=message,
        idempotency_key=row.request_token,
    )


def _refused(actor, order: Order, plan: Plan | None, why: str) -> None:
    target = plan.target if plan is not None else None
    audit.entry(
        actor=actor,
        action=A.REFUND,
        object_type="charge" if target and target.charge_id else "payment_intent",
        stripe_id=(target.charge_id or target.intent_id)
        if target
        else order.payment_intent_id or "",
        after={"order": order.public_id, "amount": plan.amount if plan else None},
        result=AuditEntry.Result.REFUSED,
        message=why,
    )


def refunds_waiting() -> int:
    """Requests awaiting a Billing admin's decision (an indexed count, capped)."""
    return OrderRefund.objects.filter(status=R.REQUESTED).order_by()[:1000].count()
