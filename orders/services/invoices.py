"""Payments that reach an order outside its Checkout Session: the invoices of its subscription,
and payment intents made by hand naming it. Recorded as the order's payments; only its own
subscription's invoice, for exactly its amount, pays it; anything else is flagged."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from djstripe.models import Customer, Subscription

from billing.consts import IntentStatus, InvoiceStatus
from billing.display import stripe_id
from orders.models import Order, OrderPayment
from orders.services import state
from orders.services.payments import F, P, payment_order, payment_settle
from orders.services.state import K
from orders.wording import status_words

logger = logging.getLogger(__name__)


def _own_subscription(
    *, order: Order, subscription_id: str | None, linked: bool, customer_id: str | None
) -> bool:
    """Whether ``subscription_id`` is the order's: the one it links, or one its own session
    started; or, before either is known (the first invoice can arrive before the session's
    completion), one of the order's Stripe customer whose metadata links it (``linked``)."""
    if not subscription_id:
        return False
    return state.order_owns(order, subscription_id=subscription_id) or (
        linked
        and order.mode == Order.Mode.SUBSCRIPTION
        and bool(customer_id)
        and customer_id == order.customer_id
    )


def order_invoice_paid(*, invoice: dict[str, Any], source: str, event_id: str = "") -> str:
    """A subscription invoice was paid: the first one pays the order (unless its session did
    already: the same money, one record), later ones renew it. Decided from the invoice's
    status; an invoice of a subscription that is not the order's, or for another amount or
    currency, is recorded and flagged."""
    if invoice.get("status") != InvoiceStatus.PAID:
        return f"invoice {invoice['id']} is {invoice.get('status')}; nothing to do"
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    subscription_id = stripe_id(parent.get("subscription") or invoice.get("subscription"))
    metadata = parent.get("metadata") or invoice.get("metadata")
    first = invoice.get("billing_reason") == "subscription_create"
    with transaction.atomic():
        order, payment = payment_order(invoice_id=invoice["id"])
        distrust = ""
        if order is None:
            order, why, distrust = state.order_find(
                metadata=metadata, fallback={"subscription_id": subscription_id}
            )
            if order is None:
                return why
            payment = OrderPayment.objects.filter(invoice_id=invoice["id"]).first()
        linked = (metadata or {}).get("order_id") == order.public_id
        own = not distrust and _own_subscription(
            order=order,
            subscription_id=subscription_id,
            linked=linked,
            customer_id=stripe_id(invoice.get("customer")),
        )
        if payment is None and own and first:
            # The first invoice is the money of the session that started the subscription.
            payment = (
                order.payments.filter(kind=OrderPayment.Kind.CHECKOUT_SESSION, invoice_id="")
                .exclude(flag=F.UNEXPECTED)
                .filter(
                    Q(subscription_id=subscription_id)
                    | Q(subscription_id="", checkout_session_id=order.checkout_session_id or "-")
                )
                .first()
            )
            if payment is not None:
                payment.invoice_id, payment.subscription_id = invoice["id"], subscription_id
        if payment is None:
            payment = OrderPayment(
                order=order,
                kind=OrderPayment.Kind.INVOICE,
                invoice_id=invoice["id"],
                subscription_id=subscription_id or "",
                source=source,
                event_id=event_id,
            )
        if own:
            state.link_if_mirrored(order, "subscription", Subscription, subscription_id)
            state.link_if_mirrored(order, "customer", Customer, stripe_id(invoice.get("customer")))
        if payment.applied:
            order.save()
            return (
                f"order {order.public_id} is already {status_words(order.status)}, paid by "
                f"{payment.stripe_id}; nothing to change"
            )
        payment.status = P.SUCCEEDED
        payment.amount = invoice.get("amount_paid") or 0
        payment.currency = invoice.get("currency") or ""
        if own and not first and payment.kind == OrderPayment.Kind.INVOICE:
            # A renewal of its own subscription: expected money, not the order's payment.
            payment.succeeded_at = payment.succeeded_at or timezone.now()
            created = payment.pk is None
            payment.save()
            if created and invoice.get("billing_reason") == "subscription_cycle":
                state.note(
                    order=order,
                    source=source,
                    event_id=event_id,
                    kind=K.RENEWED,
                    note=f"renewal invoice {invoice['id']} paid ({payment.amount})",
                )
            order.save()
            return f"order {order.public_id}: invoice {invoice['id']} paid"
        outcome = payment_settle(
            order=order,
            payment=payment,
            own=own,
            distrust=distrust,
            source=source,
            event_id=event_id,
        )
        order.save()
        return outcome


def intent_unrecorded(*, order: Order, intent_id: str) -> bool:
    """Whether a succeeded payment intent naming ``order`` is one ``order_intent_record``
    would record now: on no payment yet, and no session of the order's may still own it."""
    recorded = OrderPayment.objects.filter(payment_intent_id=intent_id).exists()
    return not recorded and not _session_may_own(order)


def _session_may_own(order: Order) -> str:
    """The order's own Checkout Session that may still turn out to hold a payment intent
    (open or settling, its intent not known yet); "" when there is none."""
    open_session = (
        order.payments.filter(
            kind=OrderPayment.Kind.CHECKOUT_SESSION,
            payment_intent_id="",
            status__in=(P.PENDING, P.PROCESSING),
        )
        .exclude(flag=F.UNEXPECTED)
        .first()
    )
    if open_session is not None:
        return open_session.checkout_session_id
    current = order.checkout_session_id
    if current and not order.payments.filter(checkout_session_id=current).exists():
        return current  # an order from before payments were recorded
    return ""


def order_intent_record(*, intent: dict[str, Any], source: str, event_id: str = "") -> str:
    """A payment intent that succeeded naming an order (``metadata.order_id``) but outside the
    order's Checkout Session and subscription: made by hand through the API or the Dashboard.
    It is recorded and flagged for support, never applied: only the order's own session or
    invoice pays it. Decided from the re-fetched intent's status.

    Intents of the order's sessions and invoices are recorded with them by their own handlers.
    Stripe sends ``payment_intent.succeeded`` before ``checkout.session.completed`` as often
    as after, so while the order has a session of its own that may still hold this intent,
    the intent is left to that session (said in the event's outcome).
    """
    intent_id = intent["id"]
    if intent.get("status") != IntentStatus.SUCCEEDED:
        return f"payment intent {intent_id} is {intent.get('status')}; nothing to record"
    with transaction.atomic():
        order, payment = payment_order(payment_intent_id=intent_id)
        if payment is not None:
            return f"{intent_id} is recorded with {payment.get_kind_display()} {payment.stripe_id}"
        order, why, distrust = state.order_find(metadata=intent.get("metadata"))
        if order is None:
            return why
        session_id = _session_may_own(order)
        if session_id:
            return (
                f"order {order.public_id}: {intent_id} may be its session {session_id}'s; "
                "left to the session's events"
            )
        payment = OrderPayment(
            order=order,
            kind=OrderPayment.Kind.PAYMENT_INTENT,
            payment_intent_id=intent_id,
            status=P.SUCCEEDED,
            amount=intent.get("amount_received") or 0,
            currency=intent.get("currency") or "",
            source=source,
            event_id=event_id,
        )
        outcome = payment_settle(
            order=order,
            payment=payment,
            own=False,
            distrust=distrust,
            source=source,
            event_id=event_id,
        )
        order.save()
        return outcome
