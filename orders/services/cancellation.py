"""Unpaid orders the customer no longer wants: cancelled by them, or replaced when they buy
the same product again (Back, a different quantity, Buy).

Stripe first: an order's open Checkout Session is expired before the order is touched, so it
can no longer be paid. A session that completed meanwhile wins: it is handed to
``order_session_apply``, which pays the order or, for a payment still settling (complete but
unpaid), keeps it waiting; either way the order is not cancelled.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from djstripe.models import Price

from billing import mirror, stripe_api
from billing.consts import SessionStatus
from orders.models import PAYABLE, Order
from orders.services import state
from orders.services.payments import order_session_apply
from orders.services.state import CheckoutError, K, S

logger = logging.getLogger(__name__)


SETTLING_CANCEL = (
    "A payment for this order is still being processed, so it cannot be cancelled now."
)


class SessionOutcome(enum.Enum):
    CLOSED = "closed"  # no session, or it can no longer be paid
    PAID = "paid"  # it completed and is paid: the order is paid now
    SETTLING = "settling"  # it completed and its payment may still arrive


def _session_close(*, order: Order, actor: AbstractBaseUser, source: str) -> SessionOutcome:
    """Make sure the order's current Checkout Session can no longer take a payment.

    Call outside a transaction (it calls Stripe). Raises ``StripeAPIError`` when Stripe cannot
    say, so nothing is cancelled on a guess.
    """
    if not order.checkout_session_id:
        return SessionOutcome.CLOSED
    session = mirror.object_sync(
        object_type="checkout.session", stripe_id=order.checkout_session_id
    ).obj
    if session.get("status") == SessionStatus.OPEN:
        started = mirror.fetch_started()
        try:
            expired = stripe_api.action(
                object_type="checkout.session", name="expire", stripe_id=session["id"]
            )
        except stripe_api.StripeAPIError as exc:
            if exc.kind != "invalid_request":
                raise
            # Only open sessions can be expired: it completed a moment ago. Look again.
            logger.info(
                "order %s: %s could not be expired: %s", order.public_id, session["id"], exc.message
            )
            session = mirror.object_sync(
                object_type="checkout.session", stripe_id=session["id"]
            ).obj
        else:
            mirror.object_write(data=stripe_api.as_dict(expired), started_at=started)
            return SessionOutcome.CLOSED
    if session.get("status") != SessionStatus.COMPLETE:
        return SessionOutcome.CLOSED
    order_session_apply(session=session, source=source, actor=actor)
    order.refresh_from_db()
    if order.status == S.PAYMENT_PROCESSING:
        return SessionOutcome.SETTLING
    # Complete and still payable: its delayed payment failed; settled, nothing can arrive.
    return SessionOutcome.PAID if order.status not in PAYABLE else SessionOutcome.CLOSED


def _expiry_not_news(order: Order, since: datetime) -> None:
    """The session's expiry, if its webhook came before we finished, was our own doing: keep
    it for support, not in the customer's history."""
    order.history.filter(kind=K.EXPIRED, at__gte=since).update(kind="")


def order_cancel(*, order: Order, user: AbstractBaseUser) -> Order:
    """The customer cancels an order they have not paid. Raises ``CheckoutError`` (worded for
    them) when it was paid meanwhile or a payment is still settling."""
    if order.status == S.PAYMENT_PROCESSING:
        raise CheckoutError(SETTLING_CANCEL)
    if not order.is_payable:
        raise CheckoutError("This order is not awaiting payment, so it cannot be cancelled.")
    since = timezone.now()
    outcome = _session_close(order=order, actor=user, source="customer cancel")
    if outcome is SessionOutcome.PAID:
        raise CheckoutError("This order was paid a moment ago, so it was not cancelled.")
    if outcome is SessionOutcome.SETTLING:
        raise CheckoutError(SETTLING_CANCEL)
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if not locked.is_payable or locked.checkout_session_id != order.checkout_session_id:
            # Paid, or a new payment started in another tab, while we closed the session.
            raise CheckoutError("This order changed a moment ago; please look at it again.")
        state.transition(
            order=locked,
            to_status=S.CANCELED,
            source="customer",
            actor=user,
            kind=K.CANCELED_BY_CUSTOMER,
        )
        locked.save(update_fields=["status", "updated_at"])
        _expiry_not_news(locked, since)
    return locked


@dataclass
class Closed:
    """Unpaid orders whose sessions were closed, from ``since``, waiting to be replaced."""

    since: datetime
    orders: list[Order] = field(default_factory=list)


def unpaid_orders_close(*, user: AbstractBaseUser, price_id: str) -> Closed:
    """Before a new order of a product: the customer's unpaid orders of the same product whose
    sessions are now closed, to be replaced by the new order (``orders_replace``).

    An order whose session completed meanwhile is left alone (paid, or its payment settling).
    """
    closed = Closed(since=timezone.now())
    # Only for a price on sale: a refused purchase must not close anything.
    product_id = (
        Price.objects.filter(id=price_id, active=True, product__active=True)
        .values_list("product_id", flat=True)
        .first()
    )
    if product_id is None:
        return closed
    candidates = Order.objects.filter(
        user=user,
        status__in=PAYABLE,
        replaced_by__isnull=True,
        items__price__product_id=product_id,
    ).distinct()
    for order in candidates:
        outcome = _session_close(order=order, actor=user, source="replaced by a new order")
        if outcome is SessionOutcome.CLOSED:
            closed.orders.append(order)
    return closed


def settling_order(*, user: AbstractBaseUser, price_id: str) -> Order | None:
    """The customer's order of this price's product whose payment is still settling, if any:
    buying it again now could charge them twice."""
    return (
        Order.objects.filter(
            user=user,
            status=S.PAYMENT_PROCESSING,
            items__price__product__prices__id=price_id,
        )
        .order_by("-created_at")
        .first()
    )


def orders_replace(*, closed: Closed, by: Order, user: AbstractBaseUser) -> None:
    """Cancel the orders ``unpaid_orders_close`` closed, as replaced by ``by``; they leave the
    customer's list."""
    with transaction.atomic():
        for order in closed.orders:
            locked = Order.objects.select_for_update().get(pk=order.pk)
            if (
                locked.pk == by.pk
                or not locked.is_payable
                or locked.checkout_session_id != order.checkout_session_id
            ):
                continue
            state.transition(
                order=locked,
                to_status=S.CANCELED,
                source="customer",
                actor=user,
                kind=K.REPLACED,
                note=f"replaced by {by.public_id}",
            )
            locked.replaced_by = by
            locked.save(update_fields=["status", "replaced_by", "updated_at"])
            _expiry_not_news(locked, closed.since)
