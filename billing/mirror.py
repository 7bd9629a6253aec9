"""Row-level writes to the dj-stripe mirror, used only by ``billing.sync``.

dj-stripe's ``sync_from_stripe_data`` upserts one object and creates missing related rows,
but leaves related rows that already exist as they were, even when the data carries a fresh
expanded copy of them. ``billing.sync`` therefore writes every expanded related object first,
each through the ordering guard, then the object itself with ``upsert``. Nothing else calls
these functions: they know nothing of ordering.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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


def _foreign_ids(data: dict[str, Any]) -> Iterator[tuple[type, str]]:
    """The (model, Stripe id) of every mirrored object ``data``'s foreign keys point at."""
    model = model_for(data.get("object", ""))
    if model is None:
        return
    for field in _stripe_foreign_keys(model):
        value = data.get(field.name)
        stripe_id = value.get("id") if isinstance(value, dict) else value
        if isinstance(stripe_id, str) and stripe_id:
            yield field.related_model, stripe_id


@functools.cache
def _stripe_foreign_keys(model: type) -> tuple[Any, ...]:
    return tuple(
        f
        for f in model._meta.concrete_fields
        if f.is_relation and issubclass(f.related_model, djstripe_models.StripeModel)
    )


# --- One batch of writes --------------------------------------------------------------------
#
# dj-stripe, syncing one object, looks up its owner account (API key row, account row) and
# the row of the object and of every object its foreign keys point at, one query each. Within
# one batch of writes (``billing.sync.objects_write``, under the objects' locks) the batch
# loads those rows up front, one query per model, and dj-stripe finds them here; a row it does
# not find here it looks up (and, missing, fetches) as it always does.

_batch = threading.local()
_account_lookup = djstripe_models.Account.get_or_retrieve_for_api_key.__func__
_row_lookup = djstripe_models.StripeModel._get_or_create_from_stripe_object.__func__


def _account_for_key(cls, api_key: str):
    cache = getattr(_batch, "accounts", None)
    if cache is None:
        return _account_lookup(cls, api_key)
    if api_key not in cache:
        cache[api_key] = _account_lookup(cls, api_key)
    return cache[api_key]


def _row_for_field(cls, data, field_name="id", *args, **kwargs):
    rows = getattr(_batch, "rows", None)
    if rows is not None:
        value = data.get(field_name)
        stripe_id = value.get("id") if isinstance(value, dict) else value
        row = rows.get((cls, stripe_id)) if isinstance(stripe_id, str) else None
        if row is not None:
            return row, False
    row, created = _row_lookup(cls, data, field_name, *args, **kwargs)
    if rows is not None and row is not None:
        rows[(cls, row.id)] = row
    return row, created


djstripe_models.Account.get_or_retrieve_for_api_key = classmethod(_account_for_key)
djstripe_models.StripeModel._get_or_create_from_stripe_object = classmethod(_row_for_field)


@contextmanager
def batch(objects: list[dict[str, Any]]) -> Iterator[dict[str, djstripe_models.StripeModel]]:
    """Within the block, this thread's dj-stripe syncs find the owner account, the rows of
    ``objects`` and the rows their foreign keys point at without a query each (loaded here,
    one query per model). Yields the rows of ``objects`` as they were, by Stripe id."""
    wanted: dict[type, set[str]] = {}
    for data in objects:
        model = model_for(data.get("object", ""))
        if model is not None:
            wanted.setdefault(model, set()).add(data["id"])
        for related, stripe_id in _foreign_ids(data):
            wanted.setdefault(related, set()).add(stripe_id)
    rows = {
        (model, row.id): row
        for model, ids in wanted.items()
        for row in model.stripe_objects.filter(id__in=ids)
    }
    outer = getattr(_batch, "accounts", None), getattr(_batch, "rows", None)
    _batch.accounts = {} if outer[0] is None else outer[0]
    _batch.rows = rows if outer[1] is None else {**outer[1], **rows}
    try:
        yield {
            stripe_id: row
            for data in objects
            if (model := model_for(data.get("object", ""))) is not None
            and (row := rows.get((model, stripe_id := data["id"]))) is not None
        }
    finally:
        _batch.accounts, _batch.rows = outer


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
