"""The generic operations, by Stripe object type (``billing.types``): retrieve, create, update,
delete, list, named actions; every one through ``policy.call``, every POST with an
idempotency key."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import stripe
from django.conf import settings

from billing.stripe_api.policy import call
from billing.stripe_api.sdk import api_key, client, json_request, service, service_path


def _options(idempotency_key: str | None) -> dict[str, str]:
    """Request options of a POST: its idempotency key, made here when the caller has none, so
    every retry of this call is the same request to Stripe (stripe-python would make a new
    key for each attempt)."""
    return {"idempotency_key": idempotency_key or f"shop-auto-{uuid.uuid4().hex}"}


def as_dict(value: stripe.StripeObject | Mapping[str, Any]) -> dict[str, Any]:
    """A plain, JSON-safe dict of a Stripe object, as it came over the wire.

    stripe-python turns ``*_decimal`` fields into ``Decimal``; Stripe sends them as strings,
    and JSON columns (the mirror, snapshots) need them that way.
    """
    if isinstance(value, stripe.StripeObject):
        return value.to_dict(for_json=True)
    return json.loads(json.dumps(value, default=str))


def as_stripe_object(data: Mapping[str, Any]) -> stripe.StripeObject:
    """A plain dict back into stripe-python's objects (dj-stripe pages lists through them)."""
    return stripe.convert_to_stripe_object(
        dict(data), api_key=api_key(), stripe_version=settings.STRIPE_API_VERSION
    )


def idempotency_key(*parts: object, namespace: str | None = None) -> str:
    """A stable key from the business identity of a create (e.g. the order and its attempt),
    within this installation's namespace (``STRIPE_IDEMPOTENCY_NAMESPACE``): Stripe keeps keys
    per account, and two deployments sharing one account both have an order 1 and a user 1."""
    if namespace is None:
        namespace = settings.STRIPE_IDEMPOTENCY_NAMESPACE
    raw = ":".join(str(p) for p in (namespace, *parts))
    return f"shop-{hashlib.sha256(raw.encode()).hexdigest()[:40]}"


# --- Generic operations, by Stripe object type -------------------------------------------


def retrieve(
    *, object_type: str, stripe_id: str, expand: Iterable[str] = ()
) -> stripe.StripeObject:
    params = {"expand": list(expand)} if expand else None
    return call(f"{object_type}.retrieve", service(object_type).retrieve, stripe_id, params)


def create(
    *,
    object_type: str,
    params: Mapping[str, Any],
    idempotency_key: str | None = None,
    refetch_replayed: bool = True,
) -> stripe.StripeObject:
    """Create an object. An answer replayed from Stripe's idempotency cache is the object as
    it was when first created (a session since paid still says ``open``), so the object is
    then retrieved: callers write what they get to the mirror and must get the present.
    ``refetch_replayed=False`` keeps the replayed answer (a webhook endpoint's secret is in
    its create answer only)."""
    created = call(
        f"{object_type}.create",
        service(object_type).create,
        dict(params),
        _options(idempotency_key),
    )
    if refetch_replayed and _replayed(created):
        return retrieve(object_type=object_type, stripe_id=created.id)
    return created


def _replayed(answer: stripe.StripeObject) -> bool:
    response = getattr(answer, "last_response", None)
    return bool(response) and response.headers.get("Idempotent-Replayed") == "true"


def update(
    *,
    object_type: str,
    stripe_id: str,
    params: Mapping[str, Any],
    idempotency_key: str | None = None,
) -> stripe.StripeObject:
    return call(
        f"{object_type}.update",
        service(object_type).update,
        stripe_id,
        dict(params),
        _options(idempotency_key),
    )


def delete(*, object_type: str, stripe_id: str) -> stripe.StripeObject:
    return call(f"{object_type}.delete", service(object_type).delete, stripe_id)


def account() -> stripe.StripeObject:
    """The account the key belongs to (its ``created`` bounds how far back objects go)."""
    return call("account.retrieve", client().v1.accounts.retrieve_current)


def list_page(
    *,
    object_type: str,
    params: Mapping[str, Any] | None = None,
    starting_after: str | None = None,
) -> stripe.ListObject:
    """One page of a list, newest first: 100 objects after ``starting_after`` (the last id of
    the previous page). ``params`` may carry filters and ``expand`` (``data.<field>``)."""
    return as_stripe_object(
        list_page_data(object_type=object_type, params=params, starting_after=starting_after)
    )


def list_page_data(
    *,
    object_type: str,
    params: Mapping[str, Any] | None = None,
    starting_after: str | None = None,
) -> dict[str, Any]:
    """``list_page`` as the JSON Stripe sent (plain dicts): for a caller that reads a page's
    objects as data, stripe-python's objects cost more to build than the request."""
    page_params = {"limit": 100, **(params or {})}
    if starting_after:
        page_params["starting_after"] = starting_after
    path = "/v1/" + service_path(object_type).replace(".", "/")
    return call(f"{object_type}.list", json_request, "get", path, page_params)


def list_pages(
    *, object_type: str, params: Mapping[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Every page of a list as Stripe sent it (``data``, ``has_more``), newest first, 100 to a
    page: the one way a list is walked to its end."""
    after = None
    while True:
        page = list_page_data(object_type=object_type, params=params, starting_after=after)
        yield page
        if not page["has_more"] or not page["data"]:
            return
        after = page["data"][-1]["id"]


def list_all(
    *, object_type: str, params: Mapping[str, Any] | None = None
) -> Iterator[stripe.StripeObject]:
    """Every object matching ``params``, newest first, as stripe-python's objects."""
    for page in list_pages(object_type=object_type, params=params):
        yield from as_stripe_object(page).data


def action(
    *,
    object_type: str,
    name: str,
    stripe_id: str,
    params: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> stripe.StripeObject:
    """A named action on one object: ``checkout.session`` ``expire``, ``subscription`` ``cancel``."""
    method = getattr(service(object_type), name)
    return call(
        f"{object_type}.{name}", method, stripe_id, dict(params or {}), _options(idempotency_key)
    )
