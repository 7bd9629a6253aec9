"""Actions on the Stripe boundary, used by views, admin, commands and tasks."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from djstripe.models import Customer, WebhookEndpoint

from billing import events, stripe_api, sync
from billing.models import InboundEvent, WebhookDelivery, WebhookSecret

logger = logging.getLogger(__name__)

MAX_WEBHOOK_BODY = 1024 * 1024
# A duplicate delivery of an event still pending after this long re-enqueues it: its first
# task was probably lost (broker outage between commit and publish).
STALE_PENDING = timedelta(minutes=5)


# --- Webhook intake -------------------------------------------------------------------------


class DeliveryRejected(Exception):
    def __init__(self, status: int, reason: str, endpoint: WebhookEndpoint | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.endpoint = endpoint  # the endpoint it was sent to, when known


@dataclass(frozen=True)
class DeliveryAccepted:
    event: InboundEvent
    created: bool


def _event_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """Validate the shape of a Stripe event and pick what the inbox indexes."""
    if not isinstance(payload, dict) or payload.get("object") != "event":
        raise DeliveryRejected(400, "body is not a Stripe event object")
    event_id, event_type = payload.get("id"), payload.get("type")
    created, data = payload.get("created"), payload.get("data")
    if not (isinstance(event_id, str) and event_id.startswith("evt_")):
        raise DeliveryRejected(400, "event has no valid id")
    if not isinstance(event_type, str) or not event_type:
        raise DeliveryRejected(400, "event has no type")
    if not isinstance(created, int) or not isinstance(data, dict):
        raise DeliveryRejected(400, "event has no created time or data")
    obj = data.get("object") if isinstance(data.get("object"), dict) else {}
    request = payload.get("request") if isinstance(payload.get("request"), dict) else {}
    return {
        "type": event_type,
        "api_version": payload.get("api_version") or "",
        "livemode": bool(payload.get("livemode")),
        "created": datetime.fromtimestamp(created, tz=UTC),
        "object_type": str(obj.get("object") or ""),
        "object_id": str(obj.get("id") or ""),
        "request_id": request.get("id") or "",
        "idempotency_key": request.get("idempotency_key") or "",
        "payload": payload,
    }


def endpoint_secrets(endpoint: WebhookEndpoint) -> list[str]:
    """The current secret, then rotated-out ones still inside their overlap."""
    previous = WebhookSecret.objects.filter(endpoint=endpoint, expires_at__gt=timezone.now())
    return [endpoint.secret, *previous.values_list("secret", flat=True)]


def delivery_reject(
    *,
    endpoint_uuid: uuid.UUID,
    endpoint: WebhookEndpoint | None,
    status: int,
    reason: str,
    body_size: int,
    remote_ip: str | None,
) -> None:
    """Log a refused delivery: who, where, why; never its body."""
    WebhookDelivery.objects.create(
        endpoint=endpoint,
        endpoint_uuid=endpoint_uuid,
        outcome=WebhookDelivery.Outcome.REJECTED,
        status_code=status,
        reason=reason[:1000],
        body_size=body_size,
        remote_ip=remote_ip,
    )
    logger.warning("webhook delivery rejected (%s) on %s: %s", status, endpoint_uuid, reason)


def delivery_accept(
    *,
    endpoint_uuid: uuid.UUID,
    body: bytes,
    signature: str,
    remote_ip: str | None,
) -> DeliveryAccepted:
    """Verify and store one delivery, and queue its event for processing on commit.

    Nothing here calls Stripe or runs business code: the request only records. The event is
    stored once (unique on its id), whichever endpoint and however often it arrives.
    """
    endpoint = WebhookEndpoint.objects.filter(djstripe_uuid=endpoint_uuid).first()
    if endpoint is None or endpoint.status == "disabled":
        raise DeliveryRejected(404, "unknown or disabled webhook endpoint", endpoint)
    if len(body) > MAX_WEBHOOK_BODY:
        raise DeliveryRejected(
            413, f"body of {len(body)} bytes is over {MAX_WEBHOOK_BODY}", endpoint
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise DeliveryRejected(400, "body is not UTF-8", endpoint) from None
    try:
        signed_at = stripe_api.signature_verify(
            payload=text,
            header=signature,
            secrets=endpoint_secrets(endpoint),
            tolerance=endpoint.djstripe_tolerance,
        )
    except stripe_api.SignatureInvalid as exc:
        raise DeliveryRejected(400, f"signature: {exc.reason}", endpoint) from None
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise DeliveryRejected(400, f"malformed JSON: {exc}", endpoint) from None
    try:
        fields = _event_fields(payload)
    except DeliveryRejected as exc:
        exc.endpoint = endpoint
        raise

    with transaction.atomic():
        accepted = event_store(payload=payload, fields=fields)
        WebhookDelivery.objects.create(
            endpoint=endpoint,
            endpoint_uuid=endpoint_uuid,
            event=accepted.event,
            outcome=(
                WebhookDelivery.Outcome.ACCEPTED
                if accepted.created
                else WebhookDelivery.Outcome.DUPLICATE
            ),
            status_code=200,
            body_size=len(body),
            body=body,
            remote_ip=remote_ip,
            signature_timestamp=datetime.fromtimestamp(signed_at, tz=UTC),
        )
    return accepted


def event_store(
    *, payload: dict[str, Any], fields: dict[str, Any] | None = None
) -> DeliveryAccepted:
    """Store one Stripe event once (unique on its id) and queue its processing on commit.

    The inbox of every way an event reaches us: webhook intake, and the replay of events
    Stripe lists that never arrived (``billing.replay``). An event already stored but still
    pending long after it first came (its task was lost) is queued again. Call in a
    transaction; raises ``DeliveryRejected`` for something that is not an event.
    """
    fields = fields or _event_fields(payload)
    # On the clock fetches are compared with (coalescing in billing.sync).
    received_at = sync.fetch_started()
    event, created = InboundEvent.objects.get_or_create(
        id=payload["id"], defaults={**fields, "received_at": received_at}
    )
    stale = (
        event.status == InboundEvent.Status.PENDING
        and event.received_at < received_at - STALE_PENDING
    )
    if created or stale:
        event_enqueue(event_id=event.id)
    return DeliveryAccepted(event=event, created=created)


def event_enqueue(*, event_id: str, countdown: float | None = None) -> None:
    """Queue processing once the current transaction commits (eager without a broker)."""
    from billing.tasks import process_event

    transaction.on_commit(lambda: process_event.apply_async((event_id,), countdown=countdown))


# --- Reprocessing and retention -------------------------------------------------------------


def event_reprocess(*, event: InboundEvent) -> InboundEvent:
    """Put a failed (or stuck) event back in the queue with a fresh retry budget.

    A processed or ignored event is left alone: its effects happened already.
    """
    with transaction.atomic():
        event = InboundEvent.objects.select_for_update().get(pk=event.pk)
        if event.is_final:
            return event
        event.status = InboundEvent.Status.PENDING
        event.next_attempt_at = None
        event.save(update_fields=["status", "next_attempt_at"])
        event_enqueue(event_id=event.id)
    return event


def events_reprocess(
    *,
    statuses: tuple[str, ...] = (InboundEvent.Status.FAILED,),
    since: datetime | None = None,
    types: list[str] | None = None,
    received_before: datetime | None = None,
) -> int:
    """Requeue every event in ``statuses`` matching the filters; return how many."""
    queryset = InboundEvent.objects.filter(status__in=statuses)
    if since is not None:
        queryset = queryset.filter(created__gte=since)
    if types:
        queryset = queryset.filter(type__in=types)
    if received_before is not None:
        queryset = queryset.filter(received_at__lt=received_before)
    count = 0
    for event in queryset.order_by("created").iterator():
        event_reprocess(event=event)
        count += 1
    return count


def deliveries_prune(*, older_than: timedelta) -> int:
    """Drop raw bodies of deliveries past retention; the delivery log and events stay."""
    cutoff = timezone.now() - older_than
    return WebhookDelivery.objects.filter(received_at__lt=cutoff, body__isnull=False).update(
        body=None
    )


# --- Webhook endpoints ----------------------------------------------------------------------


def webhook_endpoint_create(
    *,
    base_url: str,
    api_version: str | None = None,
    enabled_events: list[str] | None = None,
    description: str = "",
) -> WebhookEndpoint:
    """Create an endpoint in Stripe (our URL, our event types, a pinned version) and locally.

    The URL carries a local uuid so each endpoint verifies with its own secret. Stripe returns
    the signing secret only in this create response, so it is stored from it.
    """
    local_uuid = uuid.uuid4()
    url = f"{base_url.rstrip('/')}/stripe/webhook/{local_uuid}/"
    started = sync.fetch_started()
    created = stripe_api.create(
        object_type="webhook_endpoint",
        params={
            "url": url,
            "enabled_events": enabled_events or events.subscribed_event_types(),
            "api_version": api_version or settings.STRIPE_API_VERSION,
            "description": description or "stripe-shop",
            "metadata": {"djstripe_uuid": str(local_uuid)},
        },
        idempotency_key=stripe_api.idempotency_key("webhook_endpoint", local_uuid),
        refetch_replayed=False,
    )
    return webhook_endpoint_write(data=created, started_at=started)


def webhook_endpoint_write(*, data: dict[str, Any] | Any, started_at: datetime) -> WebhookEndpoint:
    """Mirror an endpoint as Stripe returned it; its signing secret goes to ``secret`` only.

    Stripe includes the secret in the create response alone. Kept out of ``stripe_data`` (and
    the sync snapshot), it is never shown by a page that renders the mirrored JSON.
    """
    data = stripe_api.as_dict(data)
    secret = data.pop("secret", None)
    with transaction.atomic():
        endpoint = sync.object_write(data=data, started_at=started_at).mirror
        if secret:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret=secret)
            endpoint.secret = secret
    return endpoint


def webhook_secret_rotate(
    *, endpoint: WebhookEndpoint, new_secret: str, overlap: timedelta
) -> WebhookEndpoint:
    """Switch to ``new_secret``; keep accepting the old one for ``overlap``, then only the new."""
    if not new_secret.startswith("whsec_"):
        raise ValueError("A webhook signing secret starts with whsec_.")
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if endpoint.secret and endpoint.secret != new_secret:
            WebhookSecret.objects.create(
                endpoint=endpoint, secret=endpoint.secret, expires_at=timezone.now() + overlap
            )
        endpoint.secret = new_secret
        endpoint.save(update_fields=["secret"])
    return endpoint


# --- Customers ------------------------------------------------------------------------------


def customer_get_or_create(*, user: AbstractBaseUser) -> Customer:
    """The user's one Stripe customer, created on first need with ``metadata.user_id``.

    The idempotency key is derived from the user, so two concurrent first checkouts create
    one customer in Stripe; the subscriber link ties it to the user in the mirror.
    """
    existing = Customer.objects.filter(subscriber=user, livemode=settings.STRIPE_LIVE_MODE)
    customer = existing.order_by("created").first()
    if customer is not None:
        return customer
    started = sync.fetch_started()
    created = stripe_api.create(
        object_type="customer",
        params={
            "metadata": {"user_id": str(user.pk)},
            **({"email": user.email} if getattr(user, "email", "") else {}),
            **({"name": user.get_full_name()} if user.get_full_name() else {}),
        },
        idempotency_key=stripe_api.idempotency_key("customer", user.pk),
    )
    with transaction.atomic():
        customer = sync.object_write(data=created, started_at=started).mirror
        Customer.objects.filter(pk=customer.pk).update(subscriber=user)
    customer.refresh_from_db()
    return customer
