"""A subscription order kept current, and cancelled at the customer's request."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from djstripe.models import Subscription

from billing import mirror, stripe_api
from billing.display import subscription_period_end
from orders.models import TRANSITIONS, Order
from orders.services import state
from orders.services.state import CheckoutError, K, S


def order_subscription_sync(
    *, subscription: dict[str, Any], source: str, event_id: str = "", changed: dict | None = None
) -> str:
    """Keep a subscription order current: link it, cancel the order when the subscription ends.

    The subscription's own state (renewal date, cancel at period end) is read from the mirror
    when shown; the order records only what changes its meaning, plus cancellation requests.
    """
    with transaction.atomic():
        order, why = state.order_locked(
            metadata=subscription.get("metadata"),
            fallback={"subscription_id": subscription.get("id")},
        )
        if order is None:
            return why
        # Only the order's own subscription (one its payment started) changes it.
        if not state.order_owns(order, subscription_id=subscription.get("id")):
            return f"order {order.public_id}: subscription {subscription['id']} is not its own"
        state.link_if_mirrored(order, "subscription", Subscription, subscription.get("id"))
        status = subscription.get("status")
        if status == "canceled" and S.CANCELED in TRANSITIONS[order.status]:
            state.transition(
                order=order,
                to_status=S.CANCELED,
                source=source,
                event_id=event_id,
                note=f"subscription {subscription['id']} ended",
                kind=K.SUBSCRIPTION_ENDED,
            )
        elif changed and "cancel_at_period_end" in changed:
            _cancel_flag_note(
                order=order, subscription=subscription, source=source, event_id=event_id
            )
        order.save()
        return f"order {order.public_id}: subscription {status}"


def _cancel_flag_note(
    *, order: Order, subscription: dict[str, Any], source: str, event_id: str = "", actor=None
) -> None:
    """Record that the subscription will end at period end, or renews again. The customer is
    told once: the webhook that follows their own click is kept for support only."""
    cancels = bool(subscription.get("cancel_at_period_end"))
    kind = K.CANCEL_SCHEDULED if cancels else K.CANCEL_UNDONE
    last = (
        order.history.filter(kind__in=(K.CANCEL_SCHEDULED, K.CANCEL_UNDONE))
        .order_by("-at", "-pk")
        .values_list("kind", flat=True)
        .first()
    )
    state.note(
        order=order,
        source=source,
        event_id=event_id,
        actor=actor,
        note=f"subscription {subscription['id']} "
        + ("cancels at period end" if cancels else "no longer cancels"),
        kind="" if last == kind else kind,
        data={"date": subscription_period_end(subscription)},
    )


def _cancel_at_period_end(*, order: Order, user: AbstractBaseUser, cancel: bool) -> dict[str, Any]:
    """Stripe first, then the mirror from Stripe's answer through the ordering guard (a webhook
    fetch in flight cannot write an older state after ours). Setting the flag is idempotent in
    Stripe, so a repeated click needs no idempotency key. ``StripeAPIError`` is left to the
    caller, which words it for the customer."""
    if order.mode != Order.Mode.SUBSCRIPTION or not order.subscription_id:
        raise CheckoutError("This order has no subscription.")
    if order.status not in (S.PAID, S.FULFILLED, S.PARTIALLY_REFUNDED):
        raise CheckoutError("This subscription has ended.")
    started = mirror.fetch_started()
    updated = stripe_api.as_dict(
        stripe_api.update(
            object_type="subscription",
            stripe_id=order.subscription_id,
            params={"cancel_at_period_end": cancel},
        )
    )
    with transaction.atomic():
        mirror.object_write(data=updated, started_at=started)
        locked = Order.objects.select_for_update().get(pk=order.pk)
        _cancel_flag_note(order=locked, subscription=updated, source="customer", actor=user)
    return updated


def order_subscription_cancel(*, order: Order, user: AbstractBaseUser) -> dict[str, Any]:
    """Cancel the order's subscription at the end of the paid period (the customer's button).
    Until then it can be resumed (``order_subscription_resume``)."""
    return _cancel_at_period_end(order=order, user=user, cancel=True)


def order_subscription_resume(*, order: Order, user: AbstractBaseUser) -> dict[str, Any]:
    """Undo a cancellation at period end: the subscription renews again. Stripe refuses this
    once the subscription has ended, and so do we (the order is then canceled)."""
    return _cancel_at_period_end(order=order, user=user, cancel=False)
