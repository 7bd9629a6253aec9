"""API v2: event destinations and thin events, through stripe-python's v2 services
(``StripeClient.v2.core``), every request through ``policy.call`` like the v1 operations.

v2 differs from v1 where it matters here: bodies are JSON, timestamps are RFC 3339 strings,
lists page with ``next_page_url`` (newest first), errors are ``{"error": {type, code,
message}}`` (stripe-python raises the same exceptions for them), and a thin event is
unversioned: the objects it points at are fetched at the version this deployment pins.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from billing.stripe_api.calls import as_dict
from billing.stripe_api.policy import call
from billing.stripe_api.sdk import client, json_request

DESTINATIONS = "/v2/core/event_destinations"
EVENTS = "/v2/core/events"
# What a destination's answers include besides their defaults: its URL, always; its signing
# secret, which Stripe returns on creation only.
INCLUDE_URL = ["webhook_endpoint.url"]
INCLUDE_SECRET = ["webhook_endpoint.signing_secret", "webhook_endpoint.url"]


def _destinations():
    return client().v2.core.event_destinations


def _options(idempotency_key: str | None) -> dict[str, str]:
    return {"idempotency_key": idempotency_key or f"shop-auto-{uuid.uuid4().hex}"}


def event_retrieve(*, event_id: str) -> dict[str, Any]:
    """The full v2 event (``data``, ``changes``, ``reason``; ``snapshot_event`` for a thin event
    about a v1 object): what a thin notification leaves out."""
    return as_dict(call("v2.core.event.retrieve", client().v2.core.events.retrieve, event_id))


def event_pages(*, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every page of ``GET /v2/core/events`` (newest first) as Stripe sent it, following
    ``next_page_url`` to the end. ``params``: ``object_id``, ``types``, ``created`` (RFC 3339
    bounds), ``limit``."""
    page = call("v2.core.event.list", json_request, "get", EVENTS, dict(params), api_mode="V2")
    while True:
        yield page
        next_url = page.get("next_page_url")
        if not next_url or not page.get("data"):
            return
        page = call("v2.core.event.list", json_request, "get", next_url, {}, api_mode="V2")


def destination_create(*, params: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
    """Create a destination; the answer carries its signing secret (the only one that does)."""
    body = {**params, "include": INCLUDE_SECRET}
    created = call(
        "v2.core.event_destination.create",
        _destinations().create,
        body,
        _options(idempotency_key),
    )
    return as_dict(created)


def destination_retrieve(*, destination_id: str) -> dict[str, Any]:
    return as_dict(
        call(
            "v2.core.event_destination.retrieve",
            _destinations().retrieve,
            destination_id,
            {"include": INCLUDE_URL},
        )
    )


def destinations_list() -> list[dict[str, Any]]:
    """Every destination of the account (with its URL), newest first."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"include": INCLUDE_URL, "limit": 100}
    page = call(
        "v2.core.event_destination.list", json_request, "get", DESTINATIONS, params, api_mode="V2"
    )
    while True:
        found.extend(page.get("data") or [])
        next_url = page.get("next_page_url")
        if not next_url or not page.get("data"):
            return found
        page = call(
            "v2.core.event_destination.list", json_request, "get", next_url, {}, api_mode="V2"
        )


def destination_update(*, destination_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
    body = {**params, "include": INCLUDE_URL}
    return as_dict(
        call(
            "v2.core.event_destination.update",
            _destinations().update,
            destination_id,
            body,
            _options(None),
        )
    )


def destination_action(*, destination_id: str, name: str) -> dict[str, Any]:
    """``enable``, ``disable``, ``delete`` or ``ping`` (which answers the ping's v2 event)."""
    if name not in ("enable", "disable", "delete", "ping"):
        raise ValueError(f"not an event destination action: {name}")
    method = getattr(_destinations(), name)
    options = {} if name == "delete" else _options(None)
    return as_dict(call(f"v2.core.event_destination.{name}", method, destination_id, {}, options))
