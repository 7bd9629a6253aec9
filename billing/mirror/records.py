"""Writing one object's row through dj-stripe, and the shapes dj-stripe reads: the objects an
object carries expanded (``expanded_children``), what its foreign keys and nested lists point at
(``related``), a row marked deleted. Used only by ``billing.mirror.write``, which knows the
ordering; nothing here does."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.utils import timezone
from djstripe import models as djstripe_models

from billing import fastjson, stripe_api, types


def _is_mirrored_object(value: Any) -> bool:
    return isinstance(value, dict) and value.get("object") in types.models() and "id" in value


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


def upsert(data: dict[str, Any]) -> djstripe_models.StripeModel | None:
    """Write ``data`` (a full object as Stripe returned it, a plain dict); ``billing.mirror``
    has written its expanded children already, so dj-stripe finds their rows instead of
    fetching them.

    (A child pointing back at a parent that is not mirrored yet makes dj-stripe fetch that
    parent: handlers avoid such expansions.)
    """
    model = types.model_for(data.get("object", ""))
    if model is None:
        return None
    return model.sync_from_stripe_data(sync_data(data), api_key=settings.STRIPE_SECRET_KEY)


class _NestedList(dict):
    """A nested list (invoice lines, subscription items, refunds) that dj-stripe iterates
    and pages (``auto_paging_iter``) as it does stripe-python's, inside a plain dict."""

    def __iter__(self) -> Iterator[Any]:  # stripe-python's lists iterate over their items
        return iter(self.get("data") or ())

    def auto_paging_iter(self) -> Iterator[Any]:
        if self.get("has_more"):  # the rest is fetched, as stripe-python would
            yield from stripe_api.as_stripe_object(self).auto_paging_iter()
        else:
            yield from self.get("data") or ()


def sync_data(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` for dj-stripe: a copy (it sets defaults on nested items) whose nested lists
    page like stripe-python's. Plain dicts spare dj-stripe converting the object to
    stripe-python's classes and back to JSON, which cost more than the rest of a write."""
    return _nested_lists(fastjson.copy(data))


def _nested_lists(value: Any) -> Any:
    """``value``, a copy of its own, with every nested list made a ``_NestedList``."""
    if type(value) is dict:
        for key, item in value.items():
            if type(item) is dict or type(item) is list:
                value[key] = _nested_lists(item)
        return _NestedList(value) if value.get("object") == "list" else value
    if type(value) is list:
        for index, item in enumerate(value):
            if type(item) is dict or type(item) is list:
                value[index] = _nested_lists(item)
    return value


def related(data: dict[str, Any], model: type | None = None) -> Iterator[tuple[type, str, bool]]:
    """(model, Stripe id, carried) of every object dj-stripe writes or finds while writing
    ``data``: what its foreign keys point at, and the items of its nested lists and what
    theirs point at. ``carried``: ``data`` holds the object itself (expanded, or a list
    item), not only its id."""
    model = model or types.model_for(data.get("object", ""))
    if model is None:
        return
    for field in _stripe_foreign_keys(model):
        value = data.get(field.name)
        stripe_id = value.get("id") if isinstance(value, dict) else value
        if isinstance(stripe_id, str) and stripe_id:
            yield field.related_model, stripe_id, isinstance(value, dict)
    for value in data.values():
        if isinstance(value, dict) and value.get("object") == "list":
            for item in value.get("data") or ():
                item_model = types.models(list_items=True).get(item.get("object", ""))
                if item_model is not None and isinstance(item.get("id"), str):
                    yield item_model, item["id"], True
                    yield from related(item, item_model)


@functools.cache
def _stripe_foreign_keys(model: type) -> tuple[Any, ...]:
    return tuple(
        f
        for f in model._meta.concrete_fields
        if f.is_relation and issubclass(f.related_model, djstripe_models.StripeModel)
    )


def row_for(data: dict[str, Any]) -> djstripe_models.StripeModel | None:
    model = types.model_for(data.get("object", ""))
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
