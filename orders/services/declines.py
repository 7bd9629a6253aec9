"""A declined payment attempt, noted in the order's history in the customer's words.

A card refused on Stripe Checkout leaves the session open (the customer may try another
card), so the session's own events say nothing; what remains of the attempt is a failed charge.
Its ``charge.failed`` event is the one place the decline is seen: a failed charge stays failed,
so the re-fetched charge still tells it even after the customer has paid with another card
(the payment intent, re-fetched then, would read succeeded, its error gone).

The note changes nothing else: the order stays payable (or paid) as it was.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from billing.consts import ChargeStatus
from billing.display import stripe_id
from orders.models import Order, OrderHistory, OrderPayment
from orders.services import state

K = OrderHistory.Kind


def _attempt_owned(order: Order, charge: dict[str, Any], intent_id: str) -> bool:
    """Whether the failed charge was an attempt to pay ``order``.

    Its payment intent is recorded on one of the order's own payments (the session completed
    since), or the order has a Checkout Session of its own still open for exactly the charge's
    amount and currency: Stripe names no session on a charge, and the session learns its
    payment intent only when it completes. Metadata naming the order is not enough alone."""
    if intent_id and state.order_owns(order, payment_intent_id=intent_id):
        return True
    return (
        charge.get("amount") == order.amount_total
        and (charge.get("currency") or "").lower() == order.currency.lower()
        and order.payments.filter(
            kind=OrderPayment.Kind.CHECKOUT_SESSION,
            status=OrderPayment.Status.PENDING,
            payment_intent_id="",
        )
        .exclude(flag=OrderPayment.Flag.UNEXPECTED)
        .exists()
    )


def order_charge_declined(*, charge: dict[str, Any], source: str, event_id: str = "") -> str:
    """Note a declined attempt to pay an order in its history (kind ``payment_declined``, the
    decline's reason in ``data``), once per charge. ``charge`` is the re-fetched charge; the
    order's status and payability are left as they are. Returns what happened, in words."""
    if charge.get("status") != ChargeStatus.FAILED:
        return f"charge {charge['id']} did not fail; nothing to note"
    intent_id = stripe_id(charge.get("payment_intent")) or ""
    with transaction.atomic():
        order, why = state.order_locked(
            metadata=charge.get("metadata"), fallback={"payment_intent_id": intent_id}
        )
        if order is None:
            return why
        if not _attempt_owned(order, charge, intent_id):
            return (
                f"order {order.public_id}: charge {charge['id']} was not an attempt to pay it "
                "(no open checkout of its own for this amount); nothing noted"
            )
        declined = order.history.filter(kind=K.PAYMENT_DECLINED).values_list("data", flat=True)
        if any(data.get("charge") == charge["id"] for data in declined):
            return f"order {order.public_id}: the decline of {charge['id']} is noted already"
        outcome = charge.get("outcome") or {}
        reason = outcome.get("reason") or charge.get("failure_code") or ""
        said = charge.get("failure_message") or outcome.get("seller_message") or ""
        state.note(
            order=order,
            source=source,
            event_id=event_id,
            kind=K.PAYMENT_DECLINED,
            data={"charge": charge["id"], "reason": reason},
            note=f"payment attempt {charge['id']} declined ({reason or 'no reason given'})"
            + (f": {said}" if said else ""),
        )
        return (
            f"order {order.public_id}: a payment attempt was declined ({reason or 'no reason'}); "
            "noted in its history, the order is unchanged"
        )
