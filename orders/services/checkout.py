"""Checkout: the order, its Checkout Session, paying again, and the customer's return."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from djstripe.models import Customer, Price

from billing import mirror, stripe_api
from billing.consts import SessionStatus
from billing.customers import customer_get_or_create, customer_replace
from orders import wording
from orders.models import PAID_STATES, Order, OrderItem
from orders.services import plans, state
from orders.services.cancellation import orders_replace, settling_order, unpaid_orders_close
from orders.services.payments import order_session_apply, session_payment_record
from orders.services.state import CheckoutError, S

logger = logging.getLogger(__name__)

MAX_QUANTITY = 99
# An open session this close to expiry is replaced rather than handed to the customer.
SESSION_REUSE_MARGIN = 5 * 60


def order_create(
    *, user: AbstractBaseUser, price_id: str, quantity: int, request_token: str
) -> Order:
    """Create an order for one price, or return the one this buy form already created.

    ``request_token`` comes from the rendered buy form, so a double-clicked button or a
    resubmitted POST finds the first order (unique on user and token) instead of a second.
    """
    existing = Order.objects.filter(user=user, request_token=request_token).first()
    if existing is not None:
        return existing
    price = (
        Price.objects.select_related("product")
        .filter(id=price_id, active=True, product__active=True)
        .first()
    )
    if price is None:
        raise CheckoutError("This product is not on sale any more.")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise CheckoutError(f"Choose a quantity between 1 and {MAX_QUANTITY}.")
    # A plan the customer holds is not sold twice, however the order is asked for.
    plans.plan_refuse_held(user=user, price=price)
    unit_amount = price.stripe_data.get("unit_amount")
    if unit_amount is None:
        raise CheckoutError("This price cannot be bought here (it has no fixed amount).")
    recurring = price.stripe_data.get("recurring") or {}
    try:
        with transaction.atomic():
            order = Order.objects.create(
                user=user,
                request_token=request_token,
                email=getattr(user, "email", "") or "",
                mode=Order.Mode.SUBSCRIPTION if recurring else Order.Mode.PAYMENT,
                currency=price.currency,
                amount_total=unit_amount * quantity,
            )
            OrderItem.objects.create(
                order=order,
                price=price,
                description=price.product.name,
                quantity=quantity,
                unit_amount=unit_amount,
                recurring_interval=recurring.get("interval", ""),
            )
            state.record(
                order=order,
                from_status="",
                to_status=order.status,
                source="checkout",
                actor=user,
                note=f"{quantity} x {price.id}",
            )
    except IntegrityError:
        # The same form submitted twice at once: the other request created it.
        return Order.objects.get(user=user, request_token=request_token)
    return order


@dataclass(frozen=True)
class PaymentStep:
    """Where to send the customer: Stripe Checkout (``url``), or back to the order."""

    order: Order
    url: str | None


def order_checkout_start(
    *, user: AbstractBaseUser, price_id: str, quantity: int, request_token: str
) -> PaymentStep:
    """The buy button: create (or find) the order, then a Checkout Session to pay it.

    A new order of a product replaces the customer's unpaid orders of the same product (their
    sessions expired in Stripe first), so Back, another quantity and Buy leave one order.
    A plan (a subscription product) is sold once per customer: ``_plan_checkout_start``.
    """
    repeat = Order.objects.filter(user=user, request_token=request_token).exists()
    price = None if repeat else Price.objects.select_related("product").filter(id=price_id).first()
    if price is not None and plans.plan_of(price) is not None:
        return _plan_checkout_start(
            user=user, price=price, quantity=quantity, request_token=request_token
        )
    stale = None if repeat else unpaid_orders_close(user=user, price_id=price_id)
    if not repeat and (settling := settling_order(user=user, price_id=price_id)) is not None:
        # Its payment may still arrive: a new order now could charge the customer twice.
        raise CheckoutError(wording.PAYMENT_SETTLING, order=settling)
    order = order_create(
        user=user, price_id=price_id, quantity=quantity, request_token=request_token
    )
    if stale is not None and stale.orders:
        orders_replace(closed=stale, by=order, user=user)
    return order_payment_start(order=order)


# An unpaid order this young without a session may be another request's, still in Stripe.
PLAN_ORDER_STARTING = timedelta(minutes=2)
# Another request of the customer's is starting a checkout for the plan at another price.
PLAN_CHECKOUT_BUSY = (
    "A checkout for this plan was started a moment ago, in another window. Please finish it "
    "there, or try again in a minute."
)


def _plan_order_claim(
    *, user: AbstractBaseUser, price: Price, quantity: int, request_token: str, closed=None
) -> tuple[Order | None, bool]:
    """Under the customer's row lock: refuse a plan they hold; reuse their unpaid order of it
    at the same price and quantity (returned with True). With ``closed`` (the unpaid orders of
    the plan whose sessions ``unpaid_orders_close`` closed), create the order, unless an unpaid
    order of the plan appeared since (another request's, at another price): that is refused, so
    two checkouts of one plan are never open at once."""
    with transaction.atomic():
        plans.user_lock(user)
        plans.plan_refuse_held(user=user, price=price)
        product_id = plans.plan_of(price)
        others = plans.plan_orders_open(user=user, product_id=product_id)
        for order, price_id, ordered in others:
            if price_id == price.id and ordered == quantity:
                return order, True
        starting = timezone.now() - PLAN_ORDER_STARTING
        if any(not o.checkout_session_id and o.created_at > starting for o, _, _ in others):
            # Its session, being created, could not be closed: it would stay open beside ours.
            raise CheckoutError(PLAN_CHECKOUT_BUSY)
        if closed is None:
            return None, False
        if {order.pk for order, _, _ in others} - {order.pk for order in closed.orders}:
            raise CheckoutError(PLAN_CHECKOUT_BUSY)
        order = order_create(
            user=user, price_id=price.id, quantity=quantity, request_token=request_token
        )
        return order, False


def _plan_checkout_start(
    *, user: AbstractBaseUser, price: Price, quantity: int, request_token: str
) -> PaymentStep:
    """The buy button for a plan (``orders.services.plans``): one Checkout at a time.

    Decided twice under the user's row lock, with Stripe called in between with nothing held:
    first refuse or reuse; then close the sessions of the plan's unpaid orders at other prices
    (Stripe first, as for any product); then, locked again, refuse (one of those sessions was
    paid meanwhile), reuse (a concurrent request made the same order) or create the order,
    which replaces the closed ones."""
    claim = {"user": user, "price": price, "quantity": quantity, "request_token": request_token}
    order, reused = _plan_order_claim(**claim)
    if order is not None:
        return order_payment_start(order=order)
    stale = unpaid_orders_close(user=user, price_id=price.id)
    order, reused = _plan_order_claim(**claim, closed=stale)
    if not reused and stale.orders:
        orders_replace(closed=stale, by=order, user=user)
    return order_payment_start(order=order)


def _link_metadata(order: Order) -> dict[str, str]:
    return {"order_id": order.public_id, "user_id": str(order.user_id)}


def _site_url(name: str, order: Order) -> str:
    return f"{settings.SITE_URL}{reverse(name, args=[order.public_id])}"


def _no_such_customer(exc: stripe_api.StripeAPIError, customer_id: str) -> bool:
    return exc.code == "resource_missing" and customer_id in exc.message


def _session_create(*, order: Order, attempt: int) -> dict[str, Any]:
    customer = customer_get_or_create(user=order.user)
    if customer.date_purged is not None or customer.stripe_data.get("deleted"):
        customer = customer_replace(user=order.user, gone=customer)
    try:
        return _session_create_for(order=order, attempt=attempt, customer=customer)
    except stripe_api.StripeAPIError as exc:
        if not _no_such_customer(exc, customer.id):
            raise
    # Deleted in Stripe without our hearing of it yet: replace it and go on.
    customer = customer_replace(user=order.user, gone=customer)
    return _session_create_for(order=order, attempt=attempt, customer=customer)


def _session_create_for(*, order: Order, attempt: int, customer: Customer) -> dict[str, Any]:
    link = _link_metadata(order)
    params: dict[str, Any] = {
        "mode": order.mode,
        "customer": customer.id,
        "client_reference_id": order.public_id,
        "line_items": [
            {"price": item.price_id, "quantity": item.quantity} for item in order.items.all()
        ],
        "metadata": link,
        # Stripe does not copy session metadata to what the session creates; without these the
        # charge, refund and invoice events could not be traced back to the order.
        **(
            {"subscription_data": {"metadata": link}}
            if order.mode == Order.Mode.SUBSCRIPTION
            else {"payment_intent_data": {"metadata": link}}
        ),
        "success_url": _site_url("orders:return", order) + "?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": _site_url("orders:cancel", order),
    }
    started = mirror.fetch_started()
    session = stripe_api.create(
        object_type="checkout.session",
        params=params,
        # Derived from the order, its attempt and its customer: a double submit gets the same
        # session; a replaced customer gets a new one.
        idempotency_key=stripe_api.idempotency_key(
            "checkout.session", order.public_id, attempt, customer.id
        ),
    )
    return mirror.object_write(data=session, started_at=started).obj


def _session_link(*, order: Order, session: dict[str, Any], attempt: int) -> Order:
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        # Every session the order created is its own payment, even one a racing request
        # made for an attempt since replaced.
        session_payment_record(order=locked, session=session, source="checkout")
        if locked.checkout_attempt != attempt or locked.checkout_session_id == session["id"]:
            return locked
        locked.checkout_session_id = session["id"]
        locked.customer_id = session.get("customer") or locked.customer_id
        if session.get("amount_total") is not None:
            locked.amount_total = session["amount_total"]
        if locked.status in (S.EXPIRED, S.PAYMENT_FAILED):
            state.transition(
                order=locked,
                to_status=S.AWAITING_PAYMENT,
                source="checkout",
                actor=order.user,
                note=f"new Checkout Session {session['id']}",
            )
        locked.save()
        return locked


def _attempt_next(*, order: Order, dead_session_id: str) -> int:
    """Move the order to its next checkout attempt, once, however many requests ask at once."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if (
            locked.checkout_session_id == dead_session_id
            and locked.checkout_attempt == order.checkout_attempt
        ):
            locked.checkout_attempt += 1
            locked.save(update_fields=["checkout_attempt", "updated_at"])
        order.checkout_attempt = locked.checkout_attempt
        return locked.checkout_attempt


def _plan_refuse_held(order: Order) -> None:
    """Paying an unpaid order of a plan the customer has come to hold another way (another
    order, the Dashboard) would bill them twice: refused."""
    if order.mode == Order.Mode.SUBSCRIPTION and order.is_payable:
        for item in order.items.select_related("price__product"):
            plans.plan_refuse_held(user=order.user, price=item.price)


def order_payment_start(*, order: Order) -> PaymentStep:
    """A Checkout Session that can pay ``order`` now: the open one, or a new one.

    Reuses the order's session while it is open (double submit, back from the cancel page);
    replaces it once it expired or failed, closing an almost-expired one first so two open
    sessions never exist for one order. A session found paid is fulfilled instead; while a
    payment is settling (complete but unpaid) nothing is created and ``CheckoutError`` says so.
    """
    attempt = order.checkout_attempt
    if order.status == S.PAYMENT_PROCESSING:
        raise CheckoutError(wording.PAYMENT_SETTLING, order=order)
    if order.checkout_session_id:
        session = mirror.object_sync(
            object_type="checkout.session", stripe_id=order.checkout_session_id
        ).obj
        if session.get("status") == SessionStatus.COMPLETE:
            # Paid, or complete but unpaid (a bank debit settling: never start another).
            order_session_apply(session=session, source="pay again")
        order.refresh_from_db()
        if order.status == S.PAYMENT_PROCESSING:
            raise CheckoutError(wording.PAYMENT_SETTLING, order=order)
        _plan_refuse_held(order)
        if session.get("status") == SessionStatus.OPEN:
            if session.get("expires_at", 0) > time.time() + SESSION_REUSE_MARGIN:
                return PaymentStep(order=order, url=session["url"])
            try:
                stripe_api.action(
                    object_type="checkout.session", name="expire", stripe_id=session["id"]
                )
            except stripe_api.StripeAPIError as exc:
                # Most likely paid this very moment: let the customer see the order.
                logger.warning("could not expire %s: %s", session["id"], exc.message)
                return PaymentStep(order=order, url=None)
        if not order.is_payable:
            return PaymentStep(order=order, url=None)
        attempt = _attempt_next(order=order, dead_session_id=session["id"])
    if not order.is_payable:
        return PaymentStep(order=order, url=None)
    _plan_refuse_held(order)
    session = _session_create(order=order, attempt=attempt)
    order = _session_link(order=order, session=session, attempt=attempt)
    return PaymentStep(order=order, url=session["url"])


def order_return_check(*, order: Order, session_id: str, user: AbstractBaseUser) -> Order:
    """The customer is back from Checkout: fetch the session and fulfil if it is paid.

    Only the order's own session is fetched (the id in the URL is the customer's input), and
    nothing is fetched once the order is paid, however often the page reloads.
    """
    if order.status in PAID_STATES or session_id != order.checkout_session_id:
        return order
    session = mirror.object_sync(object_type="checkout.session", stripe_id=session_id).obj
    if (session.get("metadata") or {}).get("order_id") == order.public_id:
        order_session_apply(session=session, source="return page", actor=user)
    order.refresh_from_db()
    return order
