"""The Stripe customer of a user: made once (an idempotency key derived from the user), replaced
when Stripe no longer has it; written to the mirror through the one write path."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from djstripe.models import Customer

from billing import mirror, stripe_api

logger = logging.getLogger(__name__)


def customer_get_or_create(*, user: AbstractBaseUser) -> Customer:
    """The user's one Stripe customer, created on first need with ``metadata.user_id``.

    The idempotency key is derived from the user, so two concurrent first checkouts create
    one customer in Stripe; the subscriber link ties it to the user in the mirror.
    """
    existing = Customer.objects.filter(subscriber=user, livemode=settings.STRIPE_LIVE_MODE)
    customer = existing.order_by("created").first()
    if customer is not None:
        return customer
    return _customer_create(user=user, key=stripe_api.idempotency_key("customer", user.pk))


def customer_replace(*, user: AbstractBaseUser, gone: Customer) -> Customer:
    """The user's Stripe customer was deleted in Stripe: mark it so in the mirror, unlink it
    from the user, and create the next one (its own idempotency key: the first customer's key
    would replay the deleted customer)."""
    logger.warning(
        "user %s: Stripe customer %s no longer exists; creating a new one", user.pk, gone.id
    )
    mirror.object_sync(object_type="customer", stripe_id=gone.id)
    # The subscriber link is ours, not Stripe's data: the mirror's write path does not own it.
    Customer.objects.filter(pk=gone.pk).update(subscriber=None)
    return _customer_create(
        user=user, key=stripe_api.idempotency_key("customer", user.pk, "replacing", gone.id)
    )


def _customer_create(*, user: AbstractBaseUser, key: str) -> Customer:
    started = mirror.fetch_started()
    created = stripe_api.create(
        object_type="customer",
        params={
            "metadata": {"user_id": str(user.pk)},
            **({"email": user.email} if getattr(user, "email", "") else {}),
            **({"name": user.get_full_name()} if user.get_full_name() else {}),
        },
        idempotency_key=key,
    )
    with transaction.atomic():
        customer = mirror.object_write(data=created, started_at=started).mirror
        Customer.objects.filter(pk=customer.pk).update(subscriber=user)
    customer.refresh_from_db()
    return customer
