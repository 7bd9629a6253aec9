"""Thin events (API v2 event destinations): a notification read at intake, and what the worker
fetches for one.

A thin notification (``"object": "v2.core.event"``) names its event (``id``, ``type``,
``created``), the object it is about (``related_object``: id, type, URL) and, for a change made
through the API, the request behind it (``reason``). It carries no data and no API version: the
worker fetches the related object at the version this deployment pins, through the ordering
guard and the coalescing every snapshot event's object goes through (``processing``), and the
full v2 event (``GET /v2/core/events/{id}``: ``changes``, ``snapshot_event``) only when something
needs it: a handler that reads what changed (``registry.register(reads_event=True)``) or the
search for a snapshot twin (``twins``).

Names: Stripe calls the thin event of a v1 event ``v1.<type>`` (``v1.customer.created``). The
inbox stores it under the v1 type, so one handler registry, one list filter and one command
option serve both payload styles; the notification as received keeps Stripe's name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from billing import stripe_api, types
from billing.models import InboundEvent, PayloadStyle
from billing.stripe_api import v2

logger = logging.getLogger(__name__)

V2_EVENT = "v2.core.event"
PING = "v2.core.event_destination.ping"
V1_PREFIX = "v1."
# v1.customer.created, v2.core.event_destination.ping, v2.core.account[requirements].updated
TYPE = re.compile(r"^v[12](\.[a-z0-9_]+(\[[a-z0-9_.]+\])?)+$")
_OBJECT_URL = re.compile(r"^/v[12]/\S+$")


def handler_type(thin_type: str) -> str:
    """The type the inbox and the handlers know a thin event by (``v1.`` dropped)."""
    return thin_type.removeprefix(V1_PREFIX) if thin_type.startswith(V1_PREFIX) else thin_type


def thin_types(event_types: Iterable[str]) -> list[str]:
    """What a thin destination subscribes to for these (v1) event types."""
    return sorted(t if t.startswith("v2.") else f"{V1_PREFIX}{t}" for t in event_types)


def iso(moment: datetime) -> str:
    """A time as v2 writes it (RFC 3339, UTC, milliseconds): for v2 list filters."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _moment(value: Any) -> datetime:
    """An RFC 3339 timestamp (v2's format: ``2026-12-07T05:19:00.123Z``)."""
    if not isinstance(value, str) or "T" not in value:
        raise ValueError("created is not an RFC 3339 timestamp")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("created has no time zone")
    return moment


def _text(value: Any, name: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value or len(value) > 255:
        raise ValueError(f"{name} is missing or not a short string")
    return value


def notification_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """Validate a thin notification and pick what the inbox indexes; ``ValueError`` says why
    it is not one. Read as stripe-python reads it too (``parse_event_notification``), so what
    is stored here is what the SDK could work with."""
    event_id = _text(payload.get("id"), "id")
    if not event_id.startswith("evt_"):
        raise ValueError("id is not an event id")
    thin_type = _text(payload.get("type"), "type")
    if not TYPE.match(thin_type):
        raise ValueError(f"type {thin_type[:60]!r} is not a thin event type")
    created = _moment(payload.get("created"))
    related = payload.get("related_object")
    if related is not None:
        if not isinstance(related, dict):
            raise ValueError("related_object is not an object")
        _text(related.get("type"), "related_object.type")
        _text(related.get("id"), "related_object.id")
        if not _OBJECT_URL.match(str(related.get("url") or "")):
            raise ValueError("related_object.url is not an API path")
    reason = payload.get("reason")
    if reason is not None and not isinstance(reason, dict):
        raise ValueError("reason is not an object")
    request = (reason or {}).get("request") or {}
    if not isinstance(request, dict):
        raise ValueError("reason.request is not an object")
    try:
        stripe_api.event_notification(payload)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"stripe-python cannot read it ({type(exc).__name__}: {exc})") from None
    related = related or {}
    return {
        "id": event_id,
        "type": handler_type(thin_type),
        "api_version": "",  # thin events are unversioned
        "livemode": bool(payload.get("livemode")),
        "created": created,
        "object_type": str(related.get("type") or "")[:64],
        "object_id": str(related.get("id") or "")[:255],
        "request_id": str(request.get("id") or "")[:255],
        "idempotency_key": str(request.get("idempotency_key") or "")[:255],
        "payload_style": PayloadStyle.THIN,
    }


def notification_of(event: dict[str, Any]) -> dict[str, Any]:
    """The notification a destination receives for a full v2 event (a replay stores what a
    delivery would have brought, beside the event itself)."""
    keys = ("id", "object", "context", "created", "livemode", "reason", "related_object", "type")
    return {key: event.get(key) for key in keys if key != "related_object" or event.get(key)}


# --- The worker's side ----------------------------------------------------------------------


def early_outcome(event: InboundEvent) -> tuple[str, str] | None:
    """(status, outcome) of a thin event that needs no fetch and no handler; None otherwise.

    A destination's ping is recorded with its round trip. An event about an object this shop
    does not mirror (a v2 resource, a billing meter) is acknowledged and recorded, never
    retried: nothing here could act on it.
    """
    if event.payload_style != PayloadStyle.THIN:
        return None
    if event.type == PING:
        return (
            InboundEvent.Status.PROCESSED,
            f"ping from {event.object_id}: arrived {received_within(event):.0f} ms after "
            "Stripe created it",
        )
    if event.object_type and types.model_for(event.object_type) is None:
        return (
            InboundEvent.Status.IGNORED,
            f"its object is a {event.object_type}, which this shop does not mirror",
        )
    return None


def full_event(event: InboundEvent) -> dict[str, Any] | None:
    """A thin event's full v2 event, fetched once and kept on the row (``fetched_event``, and
    ``snapshot_event``: the v1 event it stands for). None when Stripe no longer has it (past
    its retention): what needed it goes on without, and says so in the outcome."""
    if event.payload_style != PayloadStyle.THIN:
        return None
    if event.fetched_event is not None:
        return event.fetched_event
    try:
        data = v2.event_retrieve(event_id=event.id)
    except stripe_api.StripeNotFound:
        logger.warning("thin event %s: Stripe no longer has its full event", event.id)
        return None
    event.fetched_event = data
    event.snapshot_event = str(data.get("snapshot_event") or "")[:255]
    InboundEvent.objects.filter(pk=event.pk).update(
        fetched_event=data, snapshot_event=event.snapshot_event
    )
    return data


def previous_attributes(event: InboundEvent) -> dict[str, Any]:
    """What the change altered, as it was before: a snapshot event's
    ``data.previous_attributes``, a thin event's ``changes.before`` (its full event)."""
    if event.payload_style == PayloadStyle.THIN:
        changes = (event.fetched_event or {}).get("changes") or {}
        before = changes.get("before") if isinstance(changes, dict) else None
        return before if isinstance(before, dict) else {}
    data = (event.payload or {}).get("data") or {}
    previous = data.get("previous_attributes") if isinstance(data, dict) else None
    return previous if isinstance(previous, dict) else {}


def ping_arrival(*, event_id: str) -> InboundEvent | None:
    """The ping's event once intake stored it (the round trip's other end)."""
    return (
        InboundEvent.objects.filter(pk=event_id)
        .only("id", "received_at", "created", "status", "outcome")
        .first()
    )


def received_within(event: InboundEvent) -> float:
    """Milliseconds from Stripe creating the event to intake storing it."""
    return max((event.received_at - event.created).total_seconds() * 1000, 0.0)
