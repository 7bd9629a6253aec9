"""Actions on the Stripe boundary, used by views, admin, commands and tasks."""

from __future__ import annotations

import functools
import json
import logging
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone
from djstripe.models import Customer, WebhookEndpoint

from billing import events, metadata, mirror, permissions, stripe_api, traffic
from billing.mirror import compare
from billing.models import (
    AuditEntry,
    DeliveryCount,
    InboundEvent,
    ResyncJob,
    WebhookDelivery,
    WebhookRejectCount,
    WebhookRejectSample,
    WebhookSecret,
)

logger = logging.getLogger(__name__)

MAX_WEBHOOK_BODY = 1024 * 1024
# A duplicate delivery of an event still waiting to be processed queues it again, unless a
# task was queued for it this recently (concurrent copies of one delivery queue one task).
DUPLICATE_REQUEUE_AFTER = timedelta(seconds=5)
# Refused deliveries kept in detail: the first few of each kind per endpoint and minute, and
# at most this many in all (the newest).
REJECT_SAMPLES = 100
REJECT_SAMPLES_PER_MINUTE = 5


# --- Webhook intake -------------------------------------------------------------------------


class DeliveryRejected(Exception):
    def __init__(self, status: int, reason: str, code: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.code = code  # the kind of refusal, counted per endpoint and minute


@dataclass(frozen=True)
class DeliveryAccepted:
    event_id: str
    created: bool


def _event_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """Validate the shape of a Stripe event and pick what the inbox indexes."""
    if not isinstance(payload, dict) or payload.get("object") != "event":
        raise DeliveryRejected(400, "body is not a Stripe event object", "not_an_event")
    event_id, event_type = payload.get("id"), payload.get("type")
    created, data = payload.get("created"), payload.get("data")
    if not (isinstance(event_id, str) and event_id.startswith("evt_")) or len(event_id) > 255:
        raise DeliveryRejected(400, "event has no valid id", "not_an_event")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 255:
        raise DeliveryRejected(400, "event has no type", "not_an_event")
    if not isinstance(created, int) or not isinstance(data, dict):
        raise DeliveryRejected(400, "event has no created time or data", "not_an_event")
    obj = data.get("object") if isinstance(data.get("object"), dict) else {}
    request = payload.get("request") if isinstance(payload.get("request"), dict) else {}
    return {
        "id": event_id,
        "type": event_type,
        "api_version": str(payload.get("api_version") or "")[:64],
        "livemode": bool(payload.get("livemode")),
        "created": datetime.fromtimestamp(created, tz=UTC),
        "object_type": str(obj.get("object") or "")[:64],
        "object_id": str(obj.get("id") or "")[:255],
        "request_id": str(request.get("id") or "")[:255],
        "idempotency_key": str(request.get("idempotency_key") or "")[:255],
    }


def endpoint_secrets(endpoint: WebhookEndpoint) -> Iterator[str]:
    """The current secret, then rotated-out ones still inside their overlap.

    Lazy: the rotated-out secrets are read only when the current one does not verify, so an
    ordinary delivery costs no query for them.
    """
    yield endpoint.secret
    previous = WebhookSecret.objects.filter(endpoint=endpoint, expires_at__gt=timezone.now())
    yield from previous.values_list("secret", flat=True)


def _signature_code(reason: str) -> str:
    if reason.startswith("missing"):
        return "missing_signature"
    if "future" in reason:
        return "future_timestamp"
    if "tolerance" in reason:
        return "stale_timestamp"
    return "bad_signature"


def delivery_reject(
    *,
    endpoint_uuid: uuid.UUID,
    status: int,
    code: str,
    reason: str,
    body_size: int,
    remote_ip: str | None,
) -> None:
    """Count a refused delivery (endpoint, kind, minute); keep a few in detail, never a body.

    Anyone can POST to a webhook URL: a refusal costs one upsert, and the detailed samples
    are bounded (``REJECT_SAMPLES_PER_MINUTE`` of a kind per endpoint and minute,
    ``REJECT_SAMPLES`` in all).
    """
    now = timezone.now()
    minute = now.replace(second=0, microsecond=0)
    table = connection.ops.quote_name(WebhookRejectCount._meta.db_table)
    # The table name comes from the model; every value is a parameter.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (endpoint_uuid, reason, status_code, minute, count) "  # noqa: S608
            "VALUES (%s, %s, %s, %s, 1) ON CONFLICT (endpoint_uuid, reason, minute) "
            f"DO UPDATE SET count = {table}.count + 1 RETURNING count",
            [
                WebhookRejectCount._meta.get_field("endpoint_uuid").get_db_prep_save(
                    endpoint_uuid, connection
                ),
                code,
                status,
                WebhookRejectCount._meta.get_field("minute").get_db_prep_save(minute, connection),
            ],
        )
        (count,) = cursor.fetchone()
    if count <= REJECT_SAMPLES_PER_MINUTE:
        sample = WebhookRejectSample.objects.create(
            endpoint_uuid=endpoint_uuid,
            reason=code,
            detail=reason[:500],
            status_code=status,
            received_at=now,
            remote_ip=remote_ip,
            body_size=body_size,
        )
        WebhookRejectSample.objects.filter(pk__lte=sample.pk - REJECT_SAMPLES).delete()
    logger.warning("webhook delivery rejected (%s) on %s: %s", status, endpoint_uuid, reason)


class _EndpointCache:
    """Endpoints as this process last read them, for intake: a delivery that verifies against
    a recent read costs no query for its endpoint.

    An entry serves for ``BILLING_ENDPOINT_CACHE_SECONDS``. It can only let a delivery in:
    anything it would refuse (an unknown or disabled endpoint, a signature that does not
    verify, e.g. just after a secret rotation) is decided again on a fresh read. Saving or
    deleting an endpoint drops its entry in the process that does it; elsewhere a disabled or
    deleted endpoint stops accepting within that time.
    """

    def __init__(self) -> None:
        self._entries: dict[uuid.UUID, tuple[float, WebhookEndpoint]] = {}

    def get(self, endpoint_uuid: uuid.UUID) -> WebhookEndpoint | None:
        entry = self._entries.get(endpoint_uuid)
        if entry is None or time.monotonic() - entry[0] > settings.BILLING_ENDPOINT_CACHE_SECONDS:
            return None
        return entry[1]

    def read(self, endpoint_uuid: uuid.UUID) -> WebhookEndpoint | None:
        endpoint = (
            WebhookEndpoint.objects.filter(djstripe_uuid=endpoint_uuid)
            .only("djstripe_id", "id", "secret", "status", "djstripe_tolerance", "djstripe_uuid")
            .first()
        )
        if endpoint is None:
            self._entries.pop(endpoint_uuid, None)
        else:
            self._entries[endpoint_uuid] = (time.monotonic(), endpoint)
        return endpoint

    def drop(self, endpoint_uuid: uuid.UUID) -> None:
        self._entries.pop(endpoint_uuid, None)


endpoint_cache = _EndpointCache()


def _endpoint_verified(
    endpoint_uuid: uuid.UUID, body: bytes, signature: str
) -> tuple[WebhookEndpoint, str, int]:
    """The endpoint, the body as text and the signature's timestamp; a refusal raises.

    Tried on the cached endpoint first; a refusal is only ever decided on a fresh read.
    """
    cached = endpoint_cache.get(endpoint_uuid)
    if cached is not None:
        try:
            return _verified(cached, body, signature)
        except DeliveryRejected:
            pass
    return _verified(endpoint_cache.read(endpoint_uuid), body, signature)


def _verified(
    endpoint: WebhookEndpoint | None, body: bytes, signature: str
) -> tuple[WebhookEndpoint, str, int]:
    if endpoint is None or endpoint.status == "disabled":
        raise DeliveryRejected(404, "unknown or disabled webhook endpoint", "unknown_endpoint")
    if len(body) > MAX_WEBHOOK_BODY:
        raise DeliveryRejected(
            413, f"body of {len(body)} bytes is over {MAX_WEBHOOK_BODY}", "too_large"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise DeliveryRejected(400, "body is not UTF-8", "not_utf8") from None
    try:
        signed_at = stripe_api.signature_verify(
            payload=text,
            header=signature,
            secrets=endpoint_secrets(endpoint),
            tolerance=endpoint.djstripe_tolerance,
        )
    except stripe_api.SignatureInvalid as exc:
        raise DeliveryRejected(
            400, f"signature: {exc.reason}", _signature_code(exc.reason)
        ) from None
    return endpoint, text, signed_at


def delivery_accept(
    *,
    endpoint_uuid: uuid.UUID,
    body: bytes,
    signature: str,
    remote_ip: str | None,
) -> DeliveryAccepted:
    """Verify and store one delivery, and queue its event for processing.

    Nothing here calls Stripe or runs business code: the request only records, in at most
    four queries (the endpoint, unless this process read it in the last few seconds; the
    event, inserted unless already stored; for a duplicate, a conditional requeue; the
    delivery log row). The event's JSON is stored once, on the event, unique on its id,
    whichever endpoint and however often it arrives; the task is published after the rows
    are written, and a broker that cannot take it does not fail the delivery (the periodic
    requeue sends it later).
    """
    endpoint, text, signed_at = _endpoint_verified(endpoint_uuid, body, signature)
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise DeliveryRejected(400, f"malformed JSON: {exc}", "malformed_json") from None
    fields = _event_fields(payload)

    delivery = {
        "endpoint": endpoint.pk,
        "endpoint_uuid": endpoint_uuid,
        "event": fields["id"],
        "status_code": 200,
        "body_size": len(body),
        "remote_ip": remote_ip,
        "signature_timestamp": datetime.fromtimestamp(signed_at, tz=UTC),
    }
    created = _event_insert(fields=fields, payload_json=text, delivery=delivery)
    if created or _duplicate_requeue(event_id=fields["id"]):
        event_enqueue(event_id=fields["id"])
    return DeliveryAccepted(event_id=fields["id"], created=created)


def _event_insert(
    *, fields: dict[str, Any], payload_json: str, delivery: dict[str, Any] | None = None
) -> bool:
    """``INSERT ... ON CONFLICT (id) DO NOTHING RETURNING id``: True when the event is new.

    One statement whatever the concurrency (two copies racing: one inserts, the other waits
    for it and inserts nothing). ``received_at`` is the database's clock, the one fetch times
    are compared with (coalescing in ``billing.mirror``). The payload is the signed body's JSON
    text, stored as is. With ``delivery`` (the delivery log row's fields), the row is written
    too, ``accepted`` or ``duplicate``: on PostgreSQL in the same statement (a CTE).
    """
    quote = connection.ops.quote_name
    event_sql, event_params = _insert_values(InboundEvent, _event_values(fields, payload_json))
    pk = quote(InboundEvent._meta.pk.column)
    insert_event = f"{event_sql} ON CONFLICT ({pk}) DO NOTHING RETURNING {pk}"
    accepted, duplicate = WebhookDelivery.Outcome.ACCEPTED, WebhookDelivery.Outcome.DUPLICATE
    # Identifiers come from the models' fields; every value is a parameter.
    with connection.cursor() as cursor:
        if delivery is not None and connection.vendor == "postgresql":
            values = {**_delivery_values(delivery), "outcome": None}
            delivery_sql, delivery_params = _insert_values(WebhookDelivery, values)
            outcome = "CASE WHEN EXISTS (SELECT 1 FROM new_event) THEN %s ELSE %s END"
            # the outcome placeholder (last) becomes the CASE
            head, _, _ = delivery_sql.rpartition("%s")
            cursor.execute(
                f"WITH new_event AS ({insert_event}) {head}{outcome}) RETURNING {quote('outcome')}",
                [*event_params, *delivery_params[:-1], accepted, duplicate],
            )
            return cursor.fetchone()[0] == accepted
        cursor.execute(insert_event, event_params)
        created = cursor.fetchone() is not None
    if delivery is not None:
        values = {**_delivery_values(delivery), "outcome": accepted if created else duplicate}
        sql, params = _insert_values(WebhookDelivery, values)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    return created


def _event_values(fields: dict[str, Any], payload_json: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in InboundEvent._meta.concrete_fields:
        if field.name == "payload":
            values[field.name] = RawSQL("%s", [payload_json])
        elif field.name in ("received_at", "queued_at"):
            values[field.name] = DATABASE_NOW
        else:
            values[field.name] = fields.get(field.name, field.get_default())
    return values


def _delivery_values(delivery: dict[str, Any]) -> dict[str, Any]:
    values = {"received_at": DATABASE_NOW, "reason": ""}
    for name, value in delivery.items():
        values[WebhookDelivery._meta.get_field(name).attname] = value
    return values


DATABASE_NOW = object()  # clock_timestamp() on PostgreSQL, Python's clock elsewhere


@functools.cache
def _fields_by_name(model: type) -> dict[str, Any]:
    """A model's concrete fields by name and by attname (``endpoint`` and ``endpoint_id``)."""
    fields = {}
    for field in model._meta.concrete_fields:
        fields[field.name] = fields[field.attname] = field
    return fields


def _insert_values(model: type, values: dict[str, Any]) -> tuple[str, list[Any]]:
    """``INSERT INTO table (columns) VALUES (...)`` for ``values`` keyed by field name or
    attname, each prepared as the ORM would (the raw payload text passed as is)."""
    quote = connection.ops.quote_name
    fields = _fields_by_name(model)
    columns, placeholders, params = [], [], []
    for name, value in values.items():
        field = fields[name]
        columns.append(quote(field.column))
        if value is DATABASE_NOW and connection.vendor == "postgresql":
            placeholders.append("clock_timestamp()")
            continue
        if value is DATABASE_NOW:
            value = timezone.now()
        if isinstance(value, RawSQL):
            params.extend(value.params)
        else:
            params.append(field.get_db_prep_save(value, connection))
        placeholders.append("%s")
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES ({', '.join(placeholders)})"
    )
    return sql, params


def _duplicate_requeue(*, event_id: str) -> bool:
    """A copy of an event still waiting (not claimed, its retry due) queues it again: its
    first task may have been lost. One conditional UPDATE; True when a task should go."""
    now = timezone.now()
    return bool(
        InboundEvent.objects.filter(pk=event_id)
        .filter(_due(now))
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lte=now - DUPLICATE_REQUEUE_AFTER))
        .update(queued_at=now)
    )


def _due(now: datetime) -> Q:
    """Waiting for a worker and not in backoff."""
    return Q(status__in=(InboundEvent.Status.PENDING, InboundEvent.Status.RETRYING)) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


def event_store(*, payload: dict[str, Any]) -> DeliveryAccepted:
    """Store one Stripe event once (unique on its id) and queue its processing on commit.

    The inbox of every way an event reaches us besides webhook intake: the replay of events
    Stripe lists that never arrived (``billing.replay``). Raises ``DeliveryRejected`` for
    something that is not an event.
    """
    fields = _event_fields(payload)
    created = _event_insert(fields=fields, payload_json=json.dumps(payload))
    if created:
        event_enqueue(event_id=fields["id"])
    return DeliveryAccepted(event_id=fields["id"], created=created)


def event_enqueue(*, event_id: str, countdown: float | None = None) -> None:
    """Publish ``billing.process_event`` once the current transaction commits.

    A broker that is down does not fail the caller (the event is stored; webhook intake
    still answers 200): the failure is logged, the event marked not queued, and the periodic
    requeue (``events_requeue``) sends it when the broker is back. The publish attempt is
    bounded (CELERY_TASK_PUBLISH_RETRY_POLICY, broker connect timeout) so a request is not
    held for long. Without a broker (unit tests) the task runs in process, waiting out
    ``countdown`` first as a worker would.
    """
    transaction.on_commit(lambda: _publish(event_id=event_id, countdown=countdown))


def _publish(*, event_id: str, countdown: float | None) -> None:
    from billing.tasks import process_event

    try:
        if countdown and process_event.app.conf.task_always_eager:
            time.sleep(countdown)
        process_event.apply_async((event_id,), countdown=countdown)
    except Exception as exc:  # any broker failure: the stored event must not be lost or 500
        logger.warning(
            "could not queue event %s (%s: %s); the periodic requeue will send it",
            event_id,
            type(exc).__name__,
            exc,
        )
        InboundEvent.objects.filter(pk=event_id).update(queued_at=None)


def events_requeue(
    *,
    since: datetime | None = None,
    types: list[str] | None = None,
    limit: int = 1000,
) -> int:
    """Queue the events no task is working on: the periodic ``billing.requeue_events``
    (Celery beat) and ``stripe_process_events --pending``. Returns how many were queued.

    An event is queued when it is due (pending, or retrying with its retry time passed) and
    no task was queued for it within ``BILLING_EVENT_REQUEUE_AFTER_SECONDS`` (or its publish
    failed), or when it is stuck: claimed by a worker longer than the lease
    (``BILLING_EVENT_LEASE_SECONDS``; the worker died). An event waiting for its retry is
    left alone, and a queued task that finds its event claimed or not due does nothing, so
    one event never has two attempts running, however often it is queued.
    """
    now = timezone.now()
    lease = timedelta(seconds=settings.BILLING_EVENT_LEASE_SECONDS)
    after = timedelta(seconds=settings.BILLING_EVENT_REQUEUE_AFTER_SECONDS)
    not_queued_lately = Q(queued_at__isnull=True) | Q(queued_at__lte=now - after)
    # A claim past its lease is taken over at once, unless it was requeued since the claim
    # (then its task gets ``after`` to start, like any other).
    stuck = Q(status=InboundEvent.Status.PROCESSING, claimed_at__lt=now - lease) & (
        not_queued_lately | Q(queued_at__lte=F("claimed_at"))
    )
    queryset = InboundEvent.objects.filter((_due(now) & not_queued_lately) | stuck)
    if since is not None:
        queryset = queryset.filter(created__gte=since)
    if types:
        queryset = queryset.filter(type__in=types)
    ids = list(queryset.order_by("received_at").values_list("pk", flat=True)[:limit])
    if not ids:
        return 0
    InboundEvent.objects.filter(pk__in=ids).update(queued_at=now)
    for event_id in ids:
        event_enqueue(event_id=event_id)
    logger.info("requeued %s event(s) no task was working on", len(ids))
    return len(ids)


# --- Reprocessing and retention -------------------------------------------------------------


def event_reprocess(*, event: InboundEvent) -> InboundEvent:
    """Put a failed event back in the queue with a fresh retry budget.

    A processed or ignored event is left alone (its effects happened already), and so is an
    event a worker is processing or one waiting for its retry: its chain of attempts goes on,
    and a second chain is never started. A pending event is queued again (its task may have
    been lost); the claim makes any extra task a no-op.
    """
    with transaction.atomic():
        event = InboundEvent.objects.select_for_update().get(pk=event.pk)
        if event.status == InboundEvent.Status.FAILED:
            event.status = InboundEvent.Status.PENDING
            event.attempts = 0
            event.next_attempt_at = None
            event.claimed_at = None
            event.queued_at = timezone.now()
            event.save(
                update_fields=["status", "attempts", "next_attempt_at", "claimed_at", "queued_at"]
            )
            event_enqueue(event_id=event.id)
        elif event.status == InboundEvent.Status.PENDING:
            event.queued_at = timezone.now()
            event.save(update_fields=["queued_at"])
            event_enqueue(event_id=event.id)
    return event


def events_reprocess(
    *,
    statuses: tuple[str, ...] = (InboundEvent.Status.FAILED,),
    since: datetime | None = None,
    types: list[str] | None = None,
) -> int:
    """Requeue every event in ``statuses`` matching the filters; return how many."""
    queryset = InboundEvent.objects.filter(status__in=statuses)
    if since is not None:
        queryset = queryset.filter(created__gte=since)
    if types:
        queryset = queryset.filter(type__in=types)
    count = 0
    for event in queryset.order_by("created").iterator():
        event_reprocess(event=event)
        count += 1
    return count


def deliveries_prune(*, older_than: timedelta) -> dict[str, int]:
    """Drop the delivery log and the refusal counters and samples past retention; the events
    and their outcomes stay. Returns how many rows of each went."""
    cutoff = timezone.now() - older_than
    traffic.traffic_count()  # the hours about to go are counted first
    return {
        "delivery_counts": DeliveryCount.objects.filter(hour__lt=cutoff).delete()[0],
        "deliveries": WebhookDelivery.objects.filter(received_at__lt=cutoff).delete()[0],
        "reject_counts": WebhookRejectCount.objects.filter(minute__lt=cutoff).delete()[0],
        "reject_samples": WebhookRejectSample.objects.filter(received_at__lt=cutoff).delete()[0],
    }


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
    started = mirror.fetch_started()
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
        endpoint = mirror.object_write(data=data, started_at=started_at).mirror
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
    return _customer_create(user=user, key=stripe_api.idempotency_key("customer", user.pk))


def customer_replace(*, user: AbstractBaseUser, gone: Customer) -> Customer:
    """The user's Stripe customer was deleted in Stripe: mark it so in the mirror, unlink it
    from the user, and create the next one (its own idempotency key: the first customer's key
    would replay the deleted customer)."""
    logger.warning("user %s: Stripe customer %s no longer exists; creating a new one",
                   user.pk, gone.id)  # fmt: skip
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


# --- The support console: metadata edits, resyncs, reprocessing ------------------------------
# Each action is checked against the actor's permissions here (the admin also hides what a
# user may not do), goes to Stripe first, writes the mirror from Stripe's answer through the
# one write path (billing.mirror), and leaves an AuditEntry and a Django admin LogEntry.


class MetadataInvalid(Exception):
    """The edit was not sent: ``errors`` maps a key (or "" for the whole edit) to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" if k else " ".join(v)
                                   for k, v in errors.items()))  # fmt: skip
        self.errors = errors


class MetadataConflict(Exception):
    """Stripe's metadata changed since the form was loaded; nothing was sent."""

    def __init__(self, *, current: dict[str, str], keys: list[str]):
        super().__init__(
            "The metadata changed in Stripe since this form was loaded "
            f"({', '.join(keys)}); nothing was saved. The form now shows Stripe's current "
            "values: check them and save again."
        )
        self.message = str(self)
        self.current = current
        self.keys = keys


@dataclass(frozen=True)
class MetadataUpdated:
    before: dict[str, str]
    after: dict[str, str]
    sent: dict[str, str]
    entry: AuditEntry | None  # None when nothing needed sending


@dataclass(frozen=True)
class Resynced:
    object_type: str
    stripe_id: str
    changes: list[list[Any]]  # [[field, before, after], ...]
    deleted: bool
    written: bool
    entry: AuditEntry


@dataclass(frozen=True)
class Reprocessed:
    event_id: str
    requeued: bool
    reason: str


def _require(actor: AbstractBaseUser, permissions: list[str]) -> None:
    if not actor.has_perms(permissions):
        raise PermissionDenied(f"{actor.get_username()} lacks {', '.join(permissions)}")


def _as_metadata(data: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (data.get("metadata") or {}).items()}


def _log_entry(*, actor: AbstractBaseUser | None, rows: list[Any], message: str) -> None:
    """The same action in Django's admin log (each object's History page)."""
    if actor is None:
        return
    LogEntry.objects.bulk_create(
        LogEntry(
            user_id=actor.pk,
            content_type=ContentType.objects.get_for_model(row),
            object_id=str(row.pk),
            # A mirrored row by its Stripe id: dj-stripe's str() misformats money, and queries.
            object_repr=str(getattr(row, "id", None) or row)[:200],
            action_flag=CHANGE,
            change_message=message,
        )
        for row in rows
    )


def _audit(
    *, actor: AbstractBaseUser | None, action: str, object_type: str, stripe_id: str, **fields
) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        action=action,
        object_type=object_type,
        stripe_id=stripe_id,
        **fields,
    )


def metadata_fetch(*, object_type: str, stripe_id: str) -> dict[str, str]:
    """The object's metadata as Stripe has it now (the edit form starts from this)."""
    data = stripe_api.as_dict(stripe_api.retrieve(object_type=object_type, stripe_id=stripe_id))
    return _as_metadata(data)


def metadata_errors(
    *, object_type: str, before: dict[str, str], changes: dict[str, str]
) -> dict[str, list[str]]:
    """Every reason not to send ``changes`` ({} when they may go): Stripe's limits, secrets,
    card data, reserved keys, and link keys that name no existing row."""
    errors: dict[str, list[str]] = {}
    for key, value in changes.items():
        problems = []
        if key in metadata.RESERVED_KEYS:
            problems.append(f"{key} is managed by the application and cannot be edited here.")
        if value != "" or key not in before:
            problems += metadata.key_errors(key)
        if value != "":
            problems += metadata.value_errors(value)
        if problems:
            errors[key] = problems
    after = metadata.apply_changes(before, changes)
    if count := metadata.count_error(after):
        errors.setdefault("", []).append(count)
    touched = [key for key, value in changes.items() if value != ""]
    for key, message in metadata.link_errors(after, keys=touched).items():
        errors.setdefault(key, []).append(message)
    return errors


def metadata_update(
    *,
    actor: AbstractBaseUser,
    object_type: str,
    stripe_id: str,
    expected: dict[str, str],
    changes: dict[str, str],
    request_token: str,
) -> MetadataUpdated:
    """Change an object's metadata in Stripe: only the keys that changed ("" deletes one).

    ``expected`` is the metadata the person saw (fetched when the form loaded). The object is
    fetched again first; if its metadata differs, someone or something changed it meanwhile
    and the edit is refused (``MetadataConflict``) rather than overwrite what they did. The
    update carries an idempotency key from the form's token and content, so a double submit
    is one change. The mirror is written from Stripe's answer through ``billing.mirror``.
    """
    sent = {key: value for key, value in changes.items() if expected.get(key, "") != value}
    _require(actor, permissions.metadata_permissions(object_type=object_type, keys=list(sent)))
    if not sent:
        return MetadataUpdated(before=expected, after=expected, sent={}, entry=None)
    if errors := metadata_errors(object_type=object_type, before=expected, changes=sent):
        raise MetadataInvalid(errors)

    audit = {"actor": actor, "object_type": object_type, "stripe_id": stripe_id,
             "action": AuditEntry.Action.METADATA_UPDATE}  # fmt: skip
    try:
        current = metadata_fetch(object_type=object_type, stripe_id=stripe_id)
    except stripe_api.StripeAPIError as exc:
        _audit(**audit, before=expected, after=None, result=AuditEntry.Result.FAILED,
               message=exc.message)  # fmt: skip
        raise
    if current != dict(expected) and current == metadata.apply_changes(expected, sent):
        # Stripe already holds exactly this edit: the same form submitted twice.
        return MetadataUpdated(before=expected, after=current, sent={}, entry=None)
    if current != dict(expected):
        keys = sorted(metadata.changes_between(expected, current))
        _audit(**audit, before=expected, after=current, result=AuditEntry.Result.REFUSED,
               message=f"refused: changed in Stripe since the form was loaded ({', '.join(keys)})")  # fmt: skip
        raise MetadataConflict(current=current, keys=keys)

    key = stripe_api.idempotency_key(
        "metadata",
        object_type,
        stripe_id,
        request_token,
        json.dumps([current, sent], sort_keys=True),
    )
    started = mirror.fetch_started()
    try:
        updated = stripe_api.update(
            object_type=object_type,
            stripe_id=stripe_id,
            params={"metadata": sent},
            idempotency_key=key,
        )
    except stripe_api.StripeAPIError as exc:
        _audit(**audit, before=current, after=None, result=AuditEntry.Result.FAILED,
               message=exc.message, idempotency_key=key)  # fmt: skip
        raise
    data = stripe_api.as_dict(updated)
    after = _as_metadata(data)
    changed = [[k, current.get(k), after.get(k)] for k in sorted(sent)]
    with transaction.atomic():
        written = mirror.object_write(data=data, started_at=started)
        entry = _audit(**audit, before=current, after=after, changes=changed,
                       result=AuditEntry.Result.DONE, idempotency_key=key,
                       message=f"changed {', '.join(sorted(sent))}")  # fmt: skip
        _log_entry(actor=actor, rows=[written.mirror] if written.mirror is not None else [],
                   message=f"Edited Stripe metadata: {', '.join(sorted(sent))}")  # fmt: skip
    return MetadataUpdated(before=current, after=after, sent=sent, entry=entry)


# Fields that say nothing to a person (and are secrets besides).
def _resync(
    *, actor: AbstractBaseUser | None, object_type: str, stripe_id: str, job: ResyncJob | None
) -> Resynced:
    audit = {"actor": actor, "object_type": object_type, "stripe_id": stripe_id,
             "action": AuditEntry.Action.RESYNC, "job": job}  # fmt: skip
    try:
        synced = mirror.object_sync(object_type=object_type, stripe_id=stripe_id)
    except stripe_api.StripeAPIError as exc:
        _audit(**audit, result=AuditEntry.Result.FAILED, message=exc.message)
        raise
    new = synced.written and synced.previous is None
    changes = (
        compare.data_changes(synced.previous, synced.obj) if synced.previous is not None else []
    )
    notes = []
    if new:
        notes.append("not mirrored before; now it is")
    if synced.deleted:
        notes.append("deleted in Stripe; marked deleted in the mirror")
    if not synced.written:
        notes.append("the mirror already held a copy fetched later; kept that one")
    notes.append(f"{len(changes)} field(s) changed" if changes else "no field changed")
    entry = _audit(
        **audit,
        before={field: old for field, old, _ in changes},
        after={field: new for field, _, new in changes},
        changes=changes,
        result=(
            AuditEntry.Result.DONE
            if changes or new or synced.deleted
            else AuditEntry.Result.UNCHANGED
        ),
        message="; ".join(notes),
    )
    _log_entry(actor=actor, rows=[synced.mirror] if synced.mirror is not None else [],
               message=f"Resynced from Stripe: {notes[-1]}")  # fmt: skip
    return Resynced(
        object_type=object_type,
        stripe_id=stripe_id,
        changes=changes,
        deleted=synced.deleted,
        written=synced.written,
        entry=entry,
    )


def object_resync(*, actor: AbstractBaseUser, object_type: str, stripe_id: str) -> Resynced:
    """Fetch one object from Stripe (registered expansions), write the mirror, say what changed.

    Goes through ``billing.mirror.object_sync``: no transaction is held during the fetch, and a
    copy older than the mirror's is never written over it. Call outside ``transaction.atomic``.
    Raises ``StripeAPIError`` (after auditing it) when Stripe cannot be asked.
    """
    _require(actor, permissions.resync_permissions(object_type=object_type))
    return _resync(actor=actor, object_type=object_type, stripe_id=stripe_id, job=None)


# More objects than this are resynced by a background job (Stripe allows 25 requests/s in
# test mode; a request should not wait on hundreds of fetches).
RESYNC_INLINE_LIMIT = 20
# Errors after which every further call would fail the same way: the job stops.
_JOB_STOPPERS = frozenset({"authentication", "configuration"})


def resync_job_start(
    *, actor: AbstractBaseUser, object_type: str, stripe_ids: list[str]
) -> ResyncJob:
    """Queue a background resync of many objects; its progress is on the job's admin page."""
    _require(actor, permissions.resync_permissions(object_type=object_type))
    ids = list(dict.fromkeys(stripe_ids))
    with transaction.atomic():
        job = ResyncJob.objects.create(
            created_by=actor, object_type=object_type, stripe_ids=ids, total=len(ids)
        )
        _log_entry(
            actor=actor, rows=[job], message=f"Queued a resync of {len(ids)} {object_type} objects"
        )

        def enqueue() -> None:
            from billing.tasks import resync_job

            resync_job.delay(job.pk)

        transaction.on_commit(enqueue)
    return job


def resync_job_run(*, job_id: int) -> ResyncJob:
    """Resync each object of a job, counting progress as it goes (safe to run again)."""
    job = ResyncJob.objects.select_related("created_by").get(pk=job_id)
    if not job.is_running:
        return job
    ResyncJob.objects.filter(pk=job.pk).update(
        status=ResyncJob.Status.RUNNING, started_at=job.started_at or timezone.now()
    )
    already = set(job.entries.values_list("stripe_id", flat=True))
    try:
        for stripe_id in job.stripe_ids:
            if stripe_id in already:
                continue  # a redelivered task picks up where the killed one stopped
            if stop := _resync_job_step(job=job, stripe_id=stripe_id):
                return _resync_job_end(job=job, status=ResyncJob.Status.FAILED, error=stop)
    except Exception:
        _resync_job_end(job=job, status=ResyncJob.Status.FAILED, error=traceback.format_exc())
        raise
    return _resync_job_end(job=job, status=ResyncJob.Status.FINISHED)


def _resync_job_step(*, job: ResyncJob, stripe_id: str) -> str | None:
    """Resync one object of the job and count it; return why the job must stop, if it must."""
    counters: dict[str, Any] = {"done": F("done") + 1}
    stop = None
    try:
        result = _resync(
            actor=job.created_by, object_type=job.object_type, stripe_id=stripe_id, job=job
        )
        if result.changes:
            counters["changed"] = F("changed") + 1
    except stripe_api.StripeAPIError as exc:
        counters["failed"] = F("failed") + 1
        if exc.kind in _JOB_STOPPERS:
            stop = exc.message
    ResyncJob.objects.filter(pk=job.pk).update(**counters)
    return stop


def _resync_job_end(*, job: ResyncJob, status: str, error: str = "") -> ResyncJob:
    ResyncJob.objects.filter(pk=job.pk).update(
        status=status, error=error, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def _not_requeued_reason(event: InboundEvent) -> str:
    if event.status == InboundEvent.Status.RETRYING:
        when = f" at {event.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC" if event.next_attempt_at else ""
        return (
            f"not requeued: waiting for its retry{when} (attempt {event.attempts + 1} of "
            f"{settings.BILLING_EVENT_MAX_ATTEMPTS}); it runs then, and a second chain of "
            "attempts is never started"
        )
    if event.status == InboundEvent.Status.PROCESSING:
        return (
            "not requeued: a worker is processing it now; if that worker died, it is taken "
            f"over once its claim is {settings.BILLING_EVENT_LEASE_SECONDS:.0f} s old"
        )
    when = f" on {event.processed_at:%Y-%m-%d %H:%M} UTC" if event.processed_at else ""
    if event.status == InboundEvent.Status.IGNORED:
        return (
            f"not requeued: ignored{when}, no handler is registered for {event.type}, "
            "so processing it again would do nothing"
        )
    return (
        f"not requeued: already processed{when}; its effects happened once and are not "
        "repeated (to refresh the object, use Resync from Stripe)"
    )


def events_reprocess_selected(
    *, actor: AbstractBaseUser, event_ids: list[str]
) -> list[Reprocessed]:
    """Requeue the chosen events that are not final; say for each why it was or was not."""
    _require(actor, [permissions.REPROCESS])
    found = {event.pk: event for event in InboundEvent.objects.filter(pk__in=event_ids)}
    outcomes = []
    for event_id in event_ids:
        event = found.get(event_id)
        if event is None:
            outcomes.append(Reprocessed(event_id, False, "not requeued: no such event stored"))
            continue
        before = event.status
        if not event.is_final:
            event = event_reprocess(event=event)
        requeued = not event.is_final and event.status == InboundEvent.Status.PENDING
        reason = (
            f"requeued (was {InboundEvent.Status(before).label})"
            if requeued
            else _not_requeued_reason(event)
        )
        with transaction.atomic():
            _audit(
                actor=actor,
                action=AuditEntry.Action.REPROCESS,
                object_type=event.object_type or "event",
                stripe_id=event.object_id or event.pk,
                before={"event": event.pk, "status": before},
                after={"event": event.pk, "status": event.status},
                result=AuditEntry.Result.DONE if requeued else AuditEntry.Result.REFUSED,
                message=f"{event.pk} ({event.type}): {reason}",
            )
            _log_entry(actor=actor, rows=[event], message=f"Reprocess: {reason}")
        outcomes.append(Reprocessed(event.pk, requeued, reason))
    return outcomes
