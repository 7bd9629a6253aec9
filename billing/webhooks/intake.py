"""Webhook intake: verify a delivery against its endpoint's or event destination's secrets
(``receivers``), store the event once, snapshot or thin (``thin``), count a refusal. No Stripe
call and no business work happens here."""

from __future__ import annotations

import functools
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.db.models.expressions import RawSQL
from django.utils import timezone

from billing import stripe_api
from billing.models import InboundEvent, PayloadStyle, WebhookDelivery
from billing.webhooks import queue, thin
from billing.webhooks.receivers import Receiver, receiver_cache, receiver_secrets

logger = logging.getLogger(__name__)


MAX_WEBHOOK_BODY = 1024 * 1024


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


# Stripe's events nest a dozen levels at most; far deeper is no event (and would exhaust the
# parser's recursion, then every page that shows the payload).
MAX_DEPTH = 64


def _parsed(text: str) -> Any:
    """The delivery's JSON, refused (400, counted) when malformed or nested beyond reason."""
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deep" if isinstance(exc, RecursionError) else str(exc)
        raise DeliveryRejected(400, f"malformed JSON: {reason}", "malformed_json") from None
    if _depth(payload) > MAX_DEPTH:
        raise DeliveryRejected(
            400, f"malformed JSON: nested more than {MAX_DEPTH} levels", "malformed_json"
        )
    return payload


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _event_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """Validate the shape of a Stripe event, snapshot or thin, and pick what the inbox
    indexes."""
    if isinstance(payload, dict) and payload.get("object") == thin.V2_EVENT:
        try:
            return thin.notification_fields(payload)
        except ValueError as exc:
            raise DeliveryRejected(400, f"thin event: {exc}", "not_an_event") from None
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
        "payload_style": PayloadStyle.SNAPSHOT,
    }


def _signature_code(reason: str) -> str:
    if reason.startswith("missing"):
        return "missing_signature"
    if "future" in reason:
        return "future_timestamp"
    if "tolerance" in reason:
        return "stale_timestamp"
    return "bad_signature"


def _receiver_verified(
    receiver_uuid: uuid.UUID, body: bytes, signature: str
) -> tuple[Receiver, str, int]:
    """The endpoint or destination, the body as text and the signature's timestamp; a
    refusal raises. Tried on the cached receiver first; a refusal is only ever decided on a
    fresh read."""
    cached = receiver_cache.get(receiver_uuid)
    if cached is not None:
        try:
            return _verified(cached, body, signature)
        except DeliveryRejected:
            pass
    return _verified(receiver_cache.read(receiver_uuid), body, signature)


def _verified(receiver: Receiver | None, body: bytes, signature: str) -> tuple[Receiver, str, int]:
    if receiver is None or not receiver.enabled:
        raise DeliveryRejected(
            404, "unknown or disabled webhook endpoint or event destination", "unknown_endpoint"
        )
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
            secrets=receiver_secrets(receiver),
            tolerance=receiver.tolerance,
        )
    except stripe_api.SignatureInvalid as exc:
        raise DeliveryRejected(
            400, f"signature: {exc.reason}", _signature_code(exc.reason)
        ) from None
    return receiver, text, signed_at


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
    receiver, text, signed_at = _receiver_verified(endpoint_uuid, body, signature)
    fields = _event_fields(_parsed(text))

    delivery = {
        "endpoint": receiver.endpoint_pk,
        "endpoint_uuid": endpoint_uuid,
        "event": fields["id"],
        "status_code": 200,
        "body_size": len(body),
        "remote_ip": remote_ip,
        "signature_timestamp": datetime.fromtimestamp(signed_at, tz=UTC),
    }
    created = _event_insert(fields=fields, payload_json=text, delivery=delivery)
    if created or queue.duplicate_requeue(event_id=fields["id"]):
        queue.event_enqueue(event_id=fields["id"])
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


def event_store(
    *, payload: dict[str, Any], fetched: dict[str, Any] | None = None
) -> DeliveryAccepted:
    """Store one Stripe event once (unique on its id) and queue its processing on commit.

    The inbox of every way an event reaches us besides webhook intake: the replay of events
    Stripe lists that never arrived (``billing.operators.replay``). ``payload`` is the event as
    a delivery would bring it (for a thin event, its notification); ``fetched`` is a thin
    event's full v2 event, when it is at hand (a v2 list brings it whole). Raises
    ``DeliveryRejected`` for something that is not an event.
    """
    fields = _event_fields(payload)
    if fetched is not None and fields["payload_style"] == PayloadStyle.THIN:
        fields["fetched_event"] = fetched
        fields["snapshot_event"] = str(fetched.get("snapshot_event") or "")[:255]
    created = _event_insert(fields=fields, payload_json=json.dumps(payload))
    if created:
        queue.event_enqueue(event_id=fields["id"])
    return DeliveryAccepted(event_id=fields["id"], created=created)
