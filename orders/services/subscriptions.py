"""A subscription order kept current, and cancelled at the customer's request."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from djstripe.models import Subscription

from billing import stripe_api, sync
from orders.models import TRANSITIONS, Order
from orders.services.payments import _link_if_mirrored, _order_locked
from orders.services.state import CheckoutError, S, _note, _transition


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
