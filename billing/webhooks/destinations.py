"""Event destinations (API v2): created in Stripe with this deployment's URL, read back beside
the webhook endpoints, enabled, disabled, deleted and pinged.

A destination is kept locally in ``EventDestination`` (dj-stripe has no model for v2 objects):
its uuid (in its URL, so each verifies with its own secret, as endpoints do), its signing secret
(Stripe returns it on creation only, and only when asked), and Stripe's answer as last read.
Stripe is asked first; the local row is written from its answer.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from billing import stripe_api
from billing.models import EventDestination, InboundEvent, PayloadStyle
from billing.stripe_api import v2
from billing.webhooks import registry, thin, traffic
from billing.webhooks.endpoints import (
    WEBHOOK_PATH,
    Endpoint,
    EndpointError,
    endpoints_list,
    types_difference,
)

_LISTED_KEY = "billing:event-destinations:listed"


def event_destination_create(
    *, base_url: str, enabled_events: list[str] | None = None, description: str = ""
) -> EventDestination:
    """A thin destination for this deployment: its URL carries a new local uuid, it takes the
    handled event types (as ``v1.<type>``), and its signing secret is stored from the answer."""
    local_uuid = uuid.uuid4()
    url = f"{base_url.rstrip('/')}{WEBHOOK_PATH}{local_uuid}/"
    created = v2.destination_create(
        params={
            "name": "stripe-shop",
            "description": description or "stripe-shop (thin events)",
            "type": "webhook_endpoint",
            "event_payload": PayloadStyle.THIN,
            "enabled_events": thin.thin_types(enabled_events or registry.subscribed_event_types()),
            "webhook_endpoint": {"url": url},
            "metadata": {"shop_uuid": str(local_uuid)},
        },
        idempotency_key=stripe_api.idempotency_key("event_destination", local_uuid),
    )
    return destination_write(data=created, local_uuid=local_uuid)


def _moment(value: Any) -> datetime | None:
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value)
    return None


def destination_write(
    *, data: dict[str, Any], local_uuid: uuid.UUID | None = None
) -> EventDestination:
    """Keep a destination as Stripe answered for it; its signing secret goes to ``secret``
    only (never to ``stripe_data``, which pages may show)."""
    data = dict(data)
    hook = dict(data.get("webhook_endpoint") or {})
    secret = hook.pop("signing_secret", None)
    data["webhook_endpoint"] = hook or None
    cache.delete(_LISTED_KEY)
    fields: dict[str, Any] = {
        "name": data.get("name") or "",
        "event_payload": data.get("event_payload") or PayloadStyle.THIN,
        "snapshot_api_version": data.get("snapshot_api_version") or "",
        "enabled_events": list(data.get("enabled_events") or []),
        "status": data.get("status") or EventDestination.Status.ENABLED,
        "stripe_data": data,
        "created": _moment(data.get("created")),
        "synced_at": timezone.now(),
    }
    if hook.get("url"):
        fields["url"] = hook["url"]
    if secret:
        fields["secret"] = secret
    if local_uuid is not None:
        fields["uuid"] = local_uuid
    row, _ = EventDestination.objects.update_or_create(id=data["id"], defaults=fields)
    return row


def _stripe_destinations(max_age: int) -> dict[str, dict[str, Any]]:
    if max_age and (listed := cache.get(_LISTED_KEY)) is not None:
        return listed
    listed = {d["id"]: d for d in v2.destinations_list() if d.get("type") == "webhook_endpoint"}
    cache.set(_LISTED_KEY, listed, settings.CONSOLE_ENDPOINTS_CACHE_SECONDS)
    return listed


def destinations_list(*, from_stripe: bool = True, max_age: int = 0) -> list[Endpoint]:
    """Every destination (of type webhook endpoint) in Stripe and locally, as ``Endpoint``s.

    ``from_stripe=False`` reads the local rows only (no API call); ``max_age`` accepts
    Stripe's list read that many seconds ago.
    """
    remote = _stripe_destinations(max_age) if from_stripe else {}
    local = {row.id: row for row in EventDestination.objects.all()}
    since = timezone.now() - timedelta(hours=24)
    delivered = traffic.events_delivered(since=since, by="endpoint_uuid") if local else {}
    result = []
    for destination_id in remote.keys() | local.keys():
        row = local.get(destination_id)
        data = remote.get(destination_id) or (row.stripe_data if row else {})
        gone = row is not None and row.status == EventDestination.Status.DELETED
        in_stripe = destination_id in remote if from_stripe else row is not None and not gone
        payload = data.get("event_payload") or (row.event_payload if row else "thin")
        enabled_events = list(data.get("enabled_events") or [])
        missing, extra = types_difference(enabled_events, thin=payload == PayloadStyle.THIN)
        result.append(
            Endpoint(
                id=destination_id,
                url=((data.get("webhook_endpoint") or {}).get("url") or (row.url if row else "")),
                api_version=data.get("snapshot_api_version") or "",
                status=(data.get("status") or "")
                if in_stripe
                else ("deleted" if gone else "missing"),
                enabled_events=enabled_events,
                created=_moment(data.get("created")) or (row.created if row else None),
                in_stripe=in_stripe,
                local=row is not None,
                has_secret=bool(row and row.secret),
                received_24h=delivered.get(row.uuid, 0) if row is not None else 0,
                missing_types=missing,
                extra_types=extra,
                payload=payload,
                uuid=str(row.uuid) if row is not None else "",
            )
        )
    return result


def receivers_list(*, from_stripe: bool = True, max_age: int = 0) -> list[Endpoint]:
    """Webhook endpoints and event destinations together, newest first."""
    every = endpoints_list(from_stripe=from_stripe, max_age=max_age) + destinations_list(
        from_stripe=from_stripe, max_age=max_age
    )
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(every, key=lambda e: (e.created or epoch, e.id), reverse=True)


def receiver_get(*, receiver_id: str) -> Endpoint:
    for receiver in receivers_list():
        if receiver.id == receiver_id:
            return receiver
    raise EndpointError(f"No webhook endpoint or event destination {receiver_id}.")


def event_destination_update(*, destination_id: str, params: dict[str, Any]) -> Endpoint:
    destination_write(data=v2.destination_update(destination_id=destination_id, params=params))
    return receiver_get(receiver_id=destination_id)


def event_destination_disable(*, destination_id: str, disabled: bool = True) -> Endpoint:
    """Stop (or resume) Stripe's deliveries to a destination."""
    name = "disable" if disabled else "enable"
    destination_write(data=v2.destination_action(destination_id=destination_id, name=name))
    return receiver_get(receiver_id=destination_id)


def event_destination_remove(*, destination_id: str) -> None:
    """Delete a destination in Stripe (callers check what is at risk first). The local row
    stays, marked deleted, so intake refuses anything still sent to its URL."""
    v2.destination_action(destination_id=destination_id, name="delete")
    EventDestination.objects.filter(pk=destination_id).update(
        status=EventDestination.Status.DELETED, synced_at=timezone.now()
    )
    cache.delete(_LISTED_KEY)


# --- ping -----------------------------------------------------------------------------------


PROCESSING_WAIT = 2.0  # seconds a ping that arrived is given to be processed too


@dataclass(frozen=True)
class Ping:
    """A ping sent to a destination and, once intake stored it, its arrival."""

    destination_id: str
    event_id: str
    sent_at: datetime
    received_at: datetime | None = None
    status: str = ""

    @property
    def round_trip_ms(self) -> float | None:
        if self.received_at is None:
            return None
        return max((self.received_at - self.sent_at).total_seconds() * 1000, 0.0)


def event_destination_ping(*, destination_id: str) -> Ping:
    """Ask Stripe to send the destination a ``v2.core.event_destination.ping`` thin event."""
    sent_at = timezone.now()
    event = v2.destination_action(destination_id=destination_id, name="ping")
    return Ping(destination_id=destination_id, event_id=event["id"], sent_at=sent_at)


def ping_arrived(ping: Ping) -> Ping:
    """The ping with its arrival, if intake has stored it (one query, no Stripe call)."""
    arrived = InboundEvent.objects.filter(pk=ping.event_id).only("received_at", "status").first()
    if arrived is None:
        return ping
    return Ping(
        destination_id=ping.destination_id,
        event_id=ping.event_id,
        sent_at=ping.sent_at,
        received_at=arrived.received_at,
        status=arrived.status,
    )


def ping_wait(ping: Ping, *, timeout: float = 10.0, interval: float = 0.05) -> Ping:
    """Wait up to ``timeout`` seconds for the ping to arrive and a worker to record it; the
    ping as it stands then (arrived but still pending when no worker took it within
    ``PROCESSING_WAIT`` seconds of its arrival)."""
    deadline = time.monotonic() + timeout
    while True:
        arrived = ping_arrived(ping)
        if arrived.status in InboundEvent.FINAL or time.monotonic() >= deadline:
            return arrived
        if arrived.received_at is not None:
            deadline = min(deadline, time.monotonic() + PROCESSING_WAIT)
        time.sleep(interval)
