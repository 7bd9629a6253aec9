"""Row-level writes to the dj-stripe mirror, used only by ``billing.sync``.

dj-stripe's ``sync_from_stripe_data`` upserts one object and creates missing related rows,
but leaves related rows that already exist as they were, even when the data carries a fresh
expanded copy of them. ``billing.sync`` therefore writes every expanded related object first,
each through the ordering guard, then the object itself with ``upsert``. Nothing else calls
these functions: they know nothing of ordering.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from djstripe import models as djstripe_models

from billing import stripe_api

# Stripe object type -> dj-stripe model that mirrors it.
MODELS: dict[str, type[djstripe_models.StripeModel]] = {
    "charge": djstripe_models.Charge,
    "checkout.session": djstripe_models.Session,
    "customer": djstripe_models.Customer,
    "invoice": djstripe_models.Invoice,
    "payment_intent": djstripe_models.PaymentIntent,
    "payment_method": djstripe_models.PaymentMethod,
    "price": djstripe_models.Price,
    "product": djstripe_models.Product,
    "refund": djstripe_models.Refund,
    "subscription": djstripe_models.Subscription,
    "webhook_endpoint": djstripe_models.WebhookEndpoint,
}


def model_for(object_type: str) -> type[djstripe_models.StripeModel] | None:
    return MODELS.get(object_type)


def _is_mirrored_object(value: Any) -> bool:
    return isinstance(value, dict) and value.get("object") in MODELS and "id" in value


def expanded_children(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Related objects that came expanded inside ``data`` (one level; recursion does the rest)."""
    children = []
    for key, value in data.items():
        if key == "object":
            continue
        if _is_mirrored_object(value):
            children.append(value)
        elif isinstance(value, dict) and value.get("object") == "list":
            children.extend(item for item in value.get("data", []) if _is_mirrored_object(item))
    return children


def upsert(data: Any) -> djstripe_models.StripeModel | None:
    """Write ``data`` (a full object as Stripe returned it); ``billing.sync`` has written its
    expanded children already, so dj-stripe finds their rows instead of fetching them.

    (A child pointing back at a parent that is not mirrored yet makes dj-stripe fetch that
    parent: handlers avoid such expansions.)
    """
    data = stripe_api.as_dict(data)
    model = model_for(data.get("object", ""))
    if model is None:
        return None
    # dj-stripe pages nested lists (subscription items, refunds) with auto_paging_iter, so it
    # needs stripe-python objects rather than the plain dict.
    return model.sync_from_stripe_data(
        stripe_api.as_stripe_object(data), api_key=settings.STRIPE_SECRET_KEY
    )


def row_for(data: dict[str, Any]) -> djstripe_models.StripeModel | None:
    model = model_for(data.get("object", ""))
    if model is None:
        return None
    return model.objects.filter(id=data["id"]).first()


def mark_deleted(data: dict[str, Any]) -> djstripe_models.StripeModel | None:
    """An object Stripe no longer has: keep the row (history points at it), flag it deleted."""
    row = row_for(data)
    if row is None:
        return None
    stripe_data = dict(row.stripe_data or {})
    stripe_data["deleted"] = True
    fields = {"stripe_data": stripe_data}
    if hasattr(row, "date_purged"):
        fields["date_purged"] = timezone.now()
    type(row).objects.filter(pk=row.pk).update(**fields)
    row.refresh_from_db()
    return row
