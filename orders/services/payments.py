"""Payment outcomes: an order paid, failed, expired or refunded, decided from the latest
object Stripe has (re-fetched, never an event's snapshot, never the event's type).

Every Checkout Session, paid invoice and payment intent that touches an order is recorded as
an ``OrderPayment``. The order is paid only by a payment that belongs to it (a session it created,
or an invoice of its own subscription) for exactly its amount and currency; anything else is
recorded with a flag for support and logged, never applied and never dropped.

Idempotency has two layers: the order row is locked (``select_for_update``) and the payment's
state checked before any effect, so the webhook handler and the customer's return page can
both call ``order_session_apply`` for the same session, in any order or at once, and the order is paid
and fulfilled once. Payment rows are written only under their order's lock."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone
from djstripe.models import Customer, PaymentIntent, Session, Subscription

from billing.consts import IntentStatus, SessionPaymentStatus
from billing.display import stripe_id
from billing.money import format_amount
from orders.models import PAID_STATES, PAYABLE, TRANSITIONS, Order, OrderPayment
from orders.services import state
from orders.services.state import S
from orders.wording import status_words

logger = logging.getLogger(__name__)

P = OrderPayment.Status
F = OrderPayment.Flag


# --- Payments as records ---------------------------------------------------------------------


def session_payment_status(session: dict[str, Any]) -> str:
    """What a Checkout Session says about its money, from its status and payment status and
    (for a payment still settling) its payment intent's status."""
    status = session.get("status")
    if status == "expired":
        return P.CANCELED
    if status != "complete":
        return P.PENDING
    if session.get("payment_status") in SessionPaymentStatus.SETTLED:
        return P.SUCCEEDED
    intent = session.get("payment_intent")
    intent_status = intent.get("status") if isinstance(intent, dict) else None
    if intent_status in IntentStatus.UNPAID:
        return P.FAILED  # the delayed payment failed; the session stays complete and unpaid
    # Complete but unpaid: an asynchronous method (a bank debit) is settling.
    return P.PROCESSING


def session_payment_record(
    *, order: Order, session: dict[str, Any], source: str, event_id: str = ""
) -> OrderPayment:
    """The row of a session the order itself created (call under the order's lock)."""
    payment, _ = OrderPayment.objects.get_or_create(
        checkout_session_id=session["id"],
        defaults={
            "order": order,
            "kind": OrderPayment.Kind.CHECKOUT_SESSION,
            "status": session_payment_status(session),
            "amount": session.get("amount_total") or 0,
            "currency": session.get("currency") or order.currency,
            "source": source,
            "event_id": event_id,
        },
    )
    return payment


def _free(field: str, value: str | None, payment: OrderPayment) -> bool:
    """Whether ``value`` may be stored in ``field`` (unique): no other payment holds it."""
    if not value:
        return False
    taken = OrderPayment.objects.filter(**{field: value}).exclude(pk=payment.pk).exists()
    if taken:
        logger.error(
            "%s %s is already on another payment; not copied to %s",
            field,
            value,
            payment.pk or "a new payment",
        )
    return not taken


def _problems(*, order: Order, payment: OrderPayment, own: bool, distrust: str) -> list:
    """Why a payment that moved money may not pay the order, most pressing first."""
    problems = []
    paid_by = order.payments.filter(applied=True).exclude(pk=payment.pk).first()
    if paid_by is not None or order.status in PAID_STATES:
        problems.append(
            (F.SECOND_PAYMENT, f"order already paid ({paid_by or 'before payments were recorded'})")
        )
    if payment.currency.lower() != order.currency.lower():
        problems.append(
            (
                F.CURRENCY_MISMATCH,
                f"currency {payment.currency} but the order is in {order.currency}",
            )
        )
    if payment.amount != order.amount_total:
        problems.append(
            (
                F.AMOUNT_MISMATCH,
                f"amount {format_amount(payment.amount, payment.currency)} but the order "
                f"totals {format_amount(order.amount_total, order.currency)}",
            )
        )
    if not own:
        problems.append((F.UNEXPECTED, distrust or "not paid through the order's own checkout"))
    if order.status == S.CANCELED and paid_by is None:
        problems.append((F.UNEXPECTED, "the order is cancelled"))
    return problems


def _flag(*, order: Order, payment: OrderPayment, problems: list, source: str, event_id: str):
    """Keep the payment for support; tell the log; leave the order alone."""
    flag = problems[0][0]
    why = "; ".join(text for _, text in problems)
    first = not payment.flag
    payment.flag, payment.flag_note = flag, why
    payment.save()
    if first:
        state.note(
            order=order,
            source=source,
            event_id=event_id,
            note=f"payment {payment.stripe_id} flagged for support: {why}",
        )
    logger.error(
        "order %s: payment %s (%s %s, %s) not applied, flagged %s: %s",
        order.public_id,
        payment.stripe_id,
        payment.amount,
        payment.currency,
        payment.status,
        flag,
        why,
    )
    return (
        f"order {order.public_id}: payment {payment.stripe_id} not applied, flagged for "
        f"support ({F(flag).label}: {why})"
    )


def payment_settle(
    *,
    order: Order,
    payment: OrderPayment,
    own: bool,
    distrust: str,
    source: str,
    event_id: str,
    actor=None,
) -> str:
    """What the payment's (just updated) status means for the order. Caller saves the order."""
    label = f"{payment.get_kind_display()} {payment.stripe_id}"
    if payment.applied:
        payment.save()
        return (
            f"order {order.public_id} is already {status_words(order.status)}, paid by "
            f"{payment.stripe_id}; nothing to change"
        )
    if payment.status in (P.SUCCEEDED, P.PROCESSING):
        problems = _problems(order=order, payment=payment, own=own, distrust=distrust)
        if problems:
            return _flag(
                order=order, payment=payment, problems=problems, source=source, event_id=event_id
            )
    if not own:
        payment.save()
        return (
            f"order {order.public_id}: {label} was not started by this order; recorded as "
            f"{payment.get_status_display().lower()}, the order is unchanged"
        )
    current = payment.checkout_session_id == order.checkout_session_id or (
        payment.kind == OrderPayment.Kind.INVOICE
    )
    if payment.status == P.SUCCEEDED:
        payment.applied, payment.succeeded_at = True, timezone.now()
        payment.save()
        state.order_paid(
            order=order, source=source, event_id=event_id, actor=actor, note=f"{label} paid"
        )
        return f"order {order.public_id} paid: {status_words(order.status)}"
    payment.save()
    if payment.status == P.PROCESSING and order.status in PAYABLE:
        state.transition(
            order=order,
            to_status=S.PAYMENT_PROCESSING,
            source=source,
            actor=actor,
            event_id=event_id,
            note=f"{label}: payment processing",
        )
        return f"order {order.public_id}: payment made, waiting for the bank to confirm it"
    to_status = {P.FAILED: S.PAYMENT_FAILED, P.CANCELED: S.EXPIRED}.get(payment.status)
    if to_status is None:
        return f"order {order.public_id}: {label} {payment.get_status_display().lower()}"
    # A replaced session ending later says nothing about the order's current one.
    if not current:
        return (
            f"order {order.public_id}: {payment.stripe_id} is not its current session (a newer "
            "checkout replaced it); the order is unchanged"
        )
    if order.status == to_status or to_status not in TRANSITIONS[order.status]:
        return (
            f"order {order.public_id} is {status_words(order.status)}; left as it is, not "
            f"changed to {status_words(to_status)}"
        )
    state.transition(
        order=order,
        to_status=to_status,
        source=source,
        actor=actor,
        event_id=event_id,
        note=f"{label} {payment.status}",
    )
    return f"order {order.public_id}: {status_words(to_status)}"


def payment_order(**match: str) -> tuple[Order | None, OrderPayment | None]:
    """The payment recorded under these Stripe ids and its order, locked; or (None, None)."""
    payment = OrderPayment.objects.filter(**match).only("order_id").first()
    if payment is None:
        return None, None
    order = Order.objects.select_for_update().get(pk=payment.order_id)
    return order, OrderPayment.objects.get(pk=payment.pk)


def order_session_apply(
    *, session: dict[str, Any], source: str, event_id: str = "", actor=None
) -> str:
    """Record what a Checkout Session says about its money and act on it; return what
    happened, in words. Decides from the session's status (and its payment intent's), never
    from the event that brought it: the completion, async and expiry handlers all call this.

    ``session`` must be the latest state from Stripe (re-fetched, not an event snapshot).
    A session the order created pays it when paid in full in its currency, keeps it waiting
    while a delayed payment settles, and leaves it payable again when that payment fails or
    the session expires. Any other session that reaches the order (a Payment Link's
    ``client_reference_id``, another user's link, a second payment) is recorded and flagged.
    Links (payment intent, subscription) are filled in from the order's own payment only.
    """
    with transaction.atomic():
        order, payment = payment_order(checkout_session_id=session["id"])
        distrust = ""
        if order is None:
            order, why, distrust = state.order_find(
                metadata=session.get("metadata"),
                fallback={"public_id": session.get("client_reference_id")},
            )
            if order is None:
                return why
            payment = OrderPayment.objects.filter(checkout_session_id=session["id"]).first()
        # Its own: a session it created (recorded then, unflagged), or its current session
        # (orders from before payments were recorded).
        own = not distrust and state.order_owns(order, checkout_session_id=session["id"])
        if payment is None:
            payment = OrderPayment(
                order=order,
                kind=OrderPayment.Kind.CHECKOUT_SESSION,
                checkout_session_id=session["id"],
                source=source,
                event_id=event_id,
                # The session that paid an order from before payments were recorded.
                applied=own and order.status in PAID_STATES,
            )
        payment.status = session_payment_status(session)
        payment.amount = session.get("amount_total") or 0
        payment.currency = session.get("currency") or ""
        for field, value in (
            ("payment_intent_id", stripe_id(session.get("payment_intent"))),
            ("subscription_id", stripe_id(session.get("subscription"))),
            ("invoice_id", stripe_id(session.get("invoice"))),
        ):
            if not getattr(payment, field) and _free(field, value, payment):
                setattr(payment, field, value)
        outcome = payment_settle(
            order=order,
            payment=payment,
            own=own,
            distrust=distrust,
            source=source,
            event_id=event_id,
            actor=actor,
        )
        if own and (payment.applied or payment.status == P.PROCESSING):
            state.link_if_mirrored(order, "checkout_session", Session, session["id"])
            state.link_if_mirrored(order, "customer", Customer, stripe_id(session.get("customer")))
            state.link_if_mirrored(
                order, "payment_intent", PaymentIntent, payment.payment_intent_id
            )
            state.link_if_mirrored(order, "subscription", Subscription, payment.subscription_id)
        order.save()
        return outcome
