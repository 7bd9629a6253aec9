"""Business actions on orders. Every status change goes through ``_transition``.

Idempotency has two layers here: the order row is locked (``select_for_update``) and its
status checked before any effect, so the webhook handler and the customer's return page can
both call ``order_fulfil`` for the same session, in any order or at once, and the order is
paid and fulfilled once. Stripe calls go through ``billing.stripe_api`` only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from djstripe.models import Customer, PaymentIntent, Price, Session, Subscription

from billing import stripe_api, sync
from billing.services import customer_get_or_create
from orders.models import PAID_STATES, PAYABLE, TRANSITIONS, Order, OrderHistory, OrderItem

logger = logging.getLogger(__name__)

S = Order.Status
MAX_QUANTITY = 99
# An open session this close to expiry is replaced rather than handed to the customer.
SESSION_REUSE_MARGIN = 5 * 60
LINK_KEYS = ("order_id", "user_id")


class CheckoutError(Exception):
    """The purchase cannot go ahead; ``message`` is for the customer."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TransitionRefused(Exception):
    def __init__(self, order: Order, to_status: str):
        super().__init__(f"order {order.public_id}: {order.status} → {to_status} is not allowed")
        self.order = order
        self.to_status = to_status


# --- State machine ------------------------------------------------------------------------


def _record(
    *,
    order: Order,
    to_status: str,
    source: str,
    actor: AbstractBaseUser | None = None,
    event_id: str = "",
    note: str = "",
    from_status: str | None = None,
) -> None:
    OrderHistory.objects.create(
        order=order,
        from_status=order.status if from_status is None else from_status,
        to_status=to_status,
        source=source,
        actor=actor if actor is not None and actor.is_authenticated else None,
        event_id=event_id,
        note=note,
    )


def _transition(
    *,
    order: Order,
    to_status: str,
    source: str,
    actor: AbstractBaseUser | None = None,
    event_id: str = "",
    note: str = "",
) -> None:
    """Change the status of a locked order in memory and record it; the caller saves."""
    if to_status not in TRANSITIONS[order.status]:
        raise TransitionRefused(order, to_status)
    _record(
        order=order, to_status=to_status, source=source, actor=actor, event_id=event_id, note=note
    )
    order.status = to_status


def order_transition(
    *,
    order: Order,
    to_status: str,
    source: str,
    actor: AbstractBaseUser | None = None,
    event_id: str = "",
    note: str = "",
) -> Order:
    """Move an order to ``to_status`` if the state machine allows it; raise ``TransitionRefused``."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        _transition(
            order=locked, to_status=to_status, source=source, actor=actor, event_id=event_id,
            note=note,
        )  # fmt: skip
        locked.save(update_fields=["status", "updated_at"])
    return locked


def _note(*, order: Order, source: str, note: str, event_id: str = "", actor=None) -> None:
    """A fact worth keeping that does not change the status (a renewal, a cancellation request)."""
    _record(
        order=order, to_status=order.status, source=source, actor=actor, event_id=event_id,
        note=note,
    )  # fmt: skip


# --- Catalog ------------------------------------------------------------------------------


def catalog_sync() -> dict[str, int]:
    """Mirror every product and price from Stripe (inactive ones too, so they drop out here).

    Products first: a price's product is then already mirrored and dj-stripe does not fetch it
    again one by one.
    """
    counts = {"product": 0, "price": 0}
    for object_type in ("product", "price"):
        started = sync.fetch_started()
        found = list(stripe_api.list_all(object_type=object_type))
        sync.objects_write(objects=found, started_at=started)
        counts[object_type] = len(found)
    return counts


# --- Checkout -----------------------------------------------------------------------------


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
            _record(order=order, from_status="", to_status=order.status, source="checkout",
                    actor=user, note=f"{quantity} x {price.id}")  # fmt: skip
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
    """The buy button: create (or find) the order, then a Checkout Session to pay it."""
    order = order_create(
        user=user, price_id=price_id, quantity=quantity, request_token=request_token
    )
    return order_payment_start(order=order)


def _link_metadata(order: Order) -> dict[str, str]:
    return {"order_id": order.public_id, "user_id": str(order.user_id)}


def _site_url(name: str, order: Order) -> str:
    return f"{settings.SITE_URL}{reverse(name, args=[order.public_id])}"


def _session_create(*, order: Order, attempt: int) -> dict[str, Any]:
    customer = customer_get_or_create(user=order.user)
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
    started = sync.fetch_started()
    session = stripe_api.create(
        object_type="checkout.session",
        params=params,
        # Derived from the order and its attempt: a double submit gets the same session.
        idempotency_key=stripe_api.idempotency_key("checkout.session", order.public_id, attempt),
    )
    return sync.object_write(data=session, started_at=started).obj


def _session_link(*, order: Order, session: dict[str, Any], attempt: int) -> Order:
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.checkout_attempt != attempt or locked.checkout_session_id == session["id"]:
            return locked
        locked.checkout_session_id = session["id"]
        locked.customer_id = session.get("customer") or locked.customer_id
        if session.get("amount_total") is not None:
            locked.amount_total = session["amount_total"]
        if locked.status in (S.EXPIRED, S.PAYMENT_FAILED):
            _transition(order=locked, to_status=S.AWAITING_PAYMENT, source="checkout",
                        actor=order.user, note=f"new Checkout Session {session['id']}")  # fmt: skip
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


def order_payment_start(*, order: Order) -> PaymentStep:
    """A Checkout Session that can pay ``order`` now: the open one, or a new one.

    Reuses the order's session while it is open (double submit, back from the cancel page);
    replaces it once it expired or failed, closing an almost-expired one first so two open
    sessions never exist for one order. A session found paid is fulfilled instead.
    """
    attempt = order.checkout_attempt
    if order.checkout_session_id:
        session = sync.object_sync(
            object_type="checkout.session", stripe_id=order.checkout_session_id
        ).obj
        if session.get("status") == "complete":
            order_fulfil(session=session, source="pay again")
        order.refresh_from_db()
        if session.get("status") == "open":
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
    session = _session_create(order=order, attempt=attempt)
    order = _session_link(order=order, session=session, attempt=attempt)
    return PaymentStep(order=order, url=session["url"])


# --- Finding the order behind a Stripe object ----------------------------------------------


def _stripe_id(value: Any) -> str | None:
    """An id from a field that may be a string or an expanded object."""
    if isinstance(value, dict):
        return value.get("id")
    return value or None


def _order_locked(
    *, metadata: dict[str, Any] | None, fallback: dict[str, str | None] | None = None
) -> tuple[Order | None, str]:
    """The order an object links to, locked; or None and why (recorded, not raised).

    ``metadata.order_id`` is the link; ``fallback`` (e.g. ``{"payment_intent_id": "pi_..."}``)
    finds orders for objects Stripe created without our metadata (a renewal's charge). A
    ``user_id`` that disagrees with the order's user means the link was tampered with or
    copied by mistake; the order is left alone.
    """
    metadata = metadata or {}
    order_id = metadata.get("order_id")
    queryset = Order.objects.select_for_update()
    order = None
    if order_id:
        order = queryset.filter(public_id=order_id).first()
        if order is None:
            return None, f"metadata.order_id {order_id} matches no order"
    else:
        for field, value in (fallback or {}).items():
            if value:
                order = queryset.filter(**{field: value}).first()
                if order is not None:
                    break
        if order is None:
            return None, "no order link (no metadata.order_id); recorded, nothing to do"
    user_id = metadata.get("user_id")
    if user_id and str(order.user_id) != str(user_id):
        logger.error("order %s: metadata.user_id %s is not its user", order.public_id, user_id)
        return (
            None,
            f"metadata.user_id {user_id} does not match order {order.public_id}; left alone",
        )
    return order, ""


def _link_if_mirrored(order: Order, field: str, model, stripe_id: str | None) -> None:
    # Only rows the mirror has: the foreign keys are real (PROTECT), not dangling ids.
    current = getattr(order, f"{field}_id")
    if stripe_id and current != stripe_id and model.objects.filter(id=stripe_id).exists():
        setattr(order, f"{field}_id", stripe_id)


# --- Payment outcomes -----------------------------------------------------------------------


def _order_paid(*, order: Order, source: str, event_id: str, actor=None, note: str = "") -> None:
    """paid → fulfilled, both recorded. The goods are digital: fulfilling is granting access,
    which needs nothing beyond confirmed payment, so it follows at once in the same
    transaction (a shop shipping goods would fulfil later, from its own process)."""
    now = timezone.now()
    order.paid_at = now
    _transition(order=order, to_status=S.PAID, source=source, actor=actor, event_id=event_id,
                note=note)  # fmt: skip
    order.fulfilled_at = now
    _transition(order=order, to_status=S.FULFILLED, source=source, actor=actor,
                event_id=event_id, note="digital goods: fulfilled on payment")  # fmt: skip


def order_fulfil(*, session: dict[str, Any], source: str, event_id: str = "", actor=None) -> str:
    """Mark the session's order paid and fulfilled, once; return what happened, in words.

    ``session`` must be the latest state from Stripe (re-fetched, not an event snapshot). Called
    by the webhook handlers and the return page, possibly at the same moment: the order row
    lock and the status check make the second caller a no-op. Links (payment intent,
    subscription) are filled in by whichever caller has them, even after payment.
    """
    with transaction.atomic():
        order, why = _order_locked(
            metadata=session.get("metadata"),
            fallback={"public_id": session.get("client_reference_id")},
        )
        if order is None:
            return why
        if session.get("status") != "complete" or session.get("payment_status") not in (
            "paid",
            "no_payment_required",
        ):
            return (
                f"order {order.public_id}: session {session.get('status')}/"
                f"{session.get('payment_status')}, payment not confirmed yet"
            )
        _link_if_mirrored(order, "checkout_session", Session, session["id"])
        _link_if_mirrored(order, "customer", Customer, _stripe_id(session.get("customer")))
        _link_if_mirrored(
            order, "payment_intent", PaymentIntent, _stripe_id(session.get("payment_intent"))
        )
        _link_if_mirrored(
            order, "subscription", Subscription, _stripe_id(session.get("subscription"))
        )
        if order.status in PAID_STATES or order.status == S.CANCELED:
            order.save()
            return f"order {order.public_id} already {order.status}"
        if order.checkout_session_id and order.checkout_session_id != session["id"]:
            logger.error("order %s paid twice (sessions %s, %s)", order.public_id,
                         order.checkout_session_id, session["id"])  # fmt: skip
        _order_paid(order=order, source=source, event_id=event_id, actor=actor,
                    note=f"Checkout Session {session['id']} paid")  # fmt: skip
        order.save()
        return f"order {order.public_id} paid and fulfilled"


def order_payment_fail(*, session: dict[str, Any], source: str, event_id: str = "") -> str:
    """An asynchronous payment (e.g. a bank debit) failed; the order can be paid again."""
    return _session_ended(session=session, to_status=S.PAYMENT_FAILED, source=source,
                          event_id=event_id)  # fmt: skip


def order_expire(*, session: dict[str, Any], source: str, event_id: str = "") -> str:
    """The session expired unpaid; the order stays payable through a new session."""
    return _session_ended(session=session, to_status=S.EXPIRED, source=source, event_id=event_id)


def _session_ended(*, session: dict[str, Any], to_status: str, source: str, event_id: str) -> str:
    with transaction.atomic():
        order, why = _order_locked(
            metadata=session.get("metadata"),
            fallback={"public_id": session.get("client_reference_id")},
        )
        if order is None:
            return why
        # A replaced session ending later says nothing about the order's current one.
        if order.checkout_session_id != session["id"]:
            return f"order {order.public_id}: {session['id']} is not its current session"
        if to_status not in TRANSITIONS[order.status]:
            return f"order {order.public_id} is {order.status}; not {to_status}"
        _transition(order=order, to_status=to_status, source=source, event_id=event_id,
                    note=f"Checkout Session {session['id']} {session.get('status')}")  # fmt: skip
        order.save(update_fields=["status", "updated_at"])
        return f"order {order.public_id} {to_status}"


def order_refund_sync(*, charge: dict[str, Any], source: str, event_id: str = "") -> str:
    """Bring the order's refunded amount and status in line with the charge's refunds."""
    with transaction.atomic():
        order, why = _order_locked(
            metadata=charge.get("metadata"),
            fallback={"payment_intent_id": _stripe_id(charge.get("payment_intent"))},
        )
        if order is None:
            return why
        refunded = int(charge.get("amount_refunded") or 0)
        if refunded == order.amount_refunded:
            return f"order {order.public_id}: refunds unchanged"
        order.amount_refunded = refunded
        full = bool(charge.get("refunded")) or refunded >= order.amount_total
        to_status = S.REFUNDED if full else S.PARTIALLY_REFUNDED
        note = f"charge {charge['id']}: {refunded} refunded of {charge.get('amount')}"
        if to_status == order.status or to_status not in TRANSITIONS[order.status]:
            _note(order=order, source=source, event_id=event_id, note=note)
        else:
            _transition(order=order, to_status=to_status, source=source, event_id=event_id,
                        note=note)  # fmt: skip
        order.save(update_fields=["status", "amount_refunded", "updated_at"])
        return f"order {order.public_id} {order.status} ({refunded} refunded)"


# --- Subscriptions --------------------------------------------------------------------------


def order_subscription_sync(
    *, subscription: dict[str, Any], source: str, event_id: str = "", changed: dict | None = None
) -> str:
    """Keep a subscription order current: link it, cancel the order when the subscription ends.

    The subscription's own state (renewal date, cancel at period end) is read from the mirror
    when shown; the order records only what changes its meaning, plus cancellation requests.
    """
    with transaction.atomic():
        order, why = _order_locked(
            metadata=subscription.get("metadata"),
            fallback={"subscription_id": subscription.get("id")},
        )
        if order is None:
            return why
        _link_if_mirrored(order, "subscription", Subscription, subscription.get("id"))
        status = subscription.get("status")
        if status == "canceled" and S.CANCELED in TRANSITIONS[order.status]:
            _transition(order=order, to_status=S.CANCELED, source=source, event_id=event_id,
                        note=f"subscription {subscription['id']} ended")  # fmt: skip
        elif changed and "cancel_at_period_end" in changed:
            when = "at period end" if subscription.get("cancel_at_period_end") else "no longer"
            _note(order=order, source=source, event_id=event_id,
                  note=f"subscription {subscription['id']} cancels {when}")  # fmt: skip
        order.save()
        return f"order {order.public_id}: subscription {status}"


def order_invoice_paid(*, invoice: dict[str, Any], source: str, event_id: str = "") -> str:
    """A subscription invoice was paid: the first one pays the order, later ones renew it."""
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    subscription_id = _stripe_id(parent.get("subscription") or invoice.get("subscription"))
    with transaction.atomic():
        order, why = _order_locked(
            metadata=parent.get("metadata") or invoice.get("metadata"),
            fallback={"subscription_id": subscription_id},
        )
        if order is None:
            return why
        _link_if_mirrored(order, "subscription", Subscription, subscription_id)
        _link_if_mirrored(order, "customer", Customer, _stripe_id(invoice.get("customer")))
        if order.status in PAYABLE:
            _order_paid(order=order, source=source, event_id=event_id,
                        note=f"first invoice {invoice['id']} paid")  # fmt: skip
            order.save()
            return f"order {order.public_id} paid and fulfilled"
        if invoice.get("billing_reason") == "subscription_cycle":
            _note(order=order, source=source, event_id=event_id,
                  note=f"renewal invoice {invoice['id']} paid ({invoice.get('amount_paid')})")  # fmt: skip
        order.save()
        return f"order {order.public_id}: invoice {invoice['id']} paid"


def order_subscription_cancel(*, order: Order, user: AbstractBaseUser) -> dict[str, Any]:
    """Cancel the order's subscription at the end of the paid period (the customer's button).

    Stripe first, then the mirror from Stripe's answer, under the object lock so a webhook
    fetch in flight cannot write an older state after ours. Setting the flag is idempotent
    in Stripe, so a repeated click needs no idempotency key.
    """
    if order.mode != Order.Mode.SUBSCRIPTION or not order.subscription_id:
        raise CheckoutError("This order has no subscription.")
    if order.status not in (S.PAID, S.FULFILLED, S.PARTIALLY_REFUNDED):
        raise CheckoutError("This subscription is not active.")
    started = sync.fetch_started()
    try:
        updated = stripe_api.as_dict(
            stripe_api.update(
                object_type="subscription",
                stripe_id=order.subscription_id,
                params={"cancel_at_period_end": True},
            )
        )
    except stripe_api.StripeAPIError as exc:
        raise CheckoutError(exc.message) from exc
    with transaction.atomic():
        sync.object_write(data=updated, started_at=started)
        locked = Order.objects.select_for_update().get(pk=order.pk)
        _note(order=locked, source="customer", actor=user,
              note=f"asked to cancel {order.subscription_id} at period end")  # fmt: skip
    return updated


# --- The return page ------------------------------------------------------------------------


def order_return_check(*, order: Order, session_id: str, user: AbstractBaseUser) -> Order:
    """The customer is back from Checkout: fetch the session and fulfil if it is paid.

    Only the order's own session is fetched (the id in the URL is the customer's input), and
    nothing is fetched once the order is paid, however often the page reloads.
    """
    if order.status in PAID_STATES or session_id != order.checkout_session_id:
        return order
    session = sync.object_sync(object_type="checkout.session", stripe_id=session_id).obj
    if (session.get("metadata") or {}).get("order_id") == order.public_id:
        order_fulfil(session=session, source="return page", actor=user)
    order.refresh_from_db()
    return order
