"""Where a delivery arrives: a v1 webhook endpoint (dj-stripe's ``WebhookEndpoint``) or an
event destination (``EventDestination``), found by the uuid in the URL, with the secrets its
signature is checked against. Both kinds share one URL scheme, one intake and one cache."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from djstripe.models import WebhookEndpoint

from billing.models import EventDestination, PayloadStyle, WebhookSecret


@dataclass(frozen=True)
class Receiver:
    """What intake needs of an endpoint or a destination."""

    uuid: uuid.UUID
    endpoint_pk: int | None  # a v1 webhook endpoint's row (deliveries point at it)
    destination_id: str | None  # an event destination's id (ed_...)
    secret: str
    enabled: bool
    tolerance: int
    payload_style: str  # what Stripe sends it: snapshot or thin

    @property
    def name(self) -> str:
        return self.destination_id or f"endpoint {self.uuid}"


def receiver_secrets(receiver: Receiver) -> Iterator[str]:
    """The current secret, then rotated-out ones still inside their overlap.

    Lazy: the rotated-out secrets are read only when the current one does not verify, so an
    ordinary delivery costs no query for them.
    """
    yield receiver.secret
    if receiver.endpoint_pk is not None:
        previous = WebhookSecret.objects.filter(
            endpoint_id=receiver.endpoint_pk, expires_at__gt=timezone.now()
        )
        yield from previous.values_list("secret", flat=True)


def _read(receiver_uuid: uuid.UUID) -> Receiver | None:
    endpoint = (
        WebhookEndpoint.objects.filter(djstripe_uuid=receiver_uuid)
        .only("djstripe_id", "secret", "status", "djstripe_tolerance", "djstripe_uuid")
        .first()
    )
    if endpoint is not None:
        return Receiver(
            uuid=receiver_uuid,
            endpoint_pk=endpoint.pk,
            destination_id=None,
            secret=endpoint.secret or "",
            enabled=endpoint.status != "disabled",
            tolerance=endpoint.djstripe_tolerance,
            payload_style=PayloadStyle.SNAPSHOT,
        )
    destination = (
        EventDestination.objects.filter(uuid=receiver_uuid)
        .only("id", "secret", "status", "tolerance", "event_payload")
        .first()
    )
    if destination is None:
        return None
    return Receiver(
        uuid=receiver_uuid,
        endpoint_pk=None,
        destination_id=destination.id,
        secret=destination.secret,
        enabled=destination.status == EventDestination.Status.ENABLED,
        tolerance=destination.tolerance,
        payload_style=destination.event_payload,
    )


class ReceiverCache:
    """Receivers as this process last read them, for intake: a delivery that verifies against
    a recent read costs no query for its endpoint or destination.

    An entry serves for ``BILLING_ENDPOINT_CACHE_SECONDS``. It can only let a delivery in:
    anything it would refuse (an unknown or disabled receiver, a signature that does not
    verify, e.g. just after a secret rotation) is decided again on a fresh read. Saving or
    deleting an endpoint or a destination drops its entry in the process that does it
    (``billing.apps``); elsewhere a disabled or deleted one stops accepting within that time.
    """

    def __init__(self) -> None:
        self._entries: dict[uuid.UUID, tuple[float, Receiver]] = {}

    def get(self, receiver_uuid: uuid.UUID) -> Receiver | None:
        entry = self._entries.get(receiver_uuid)
        if entry is None or time.monotonic() - entry[0] > settings.BILLING_ENDPOINT_CACHE_SECONDS:
            return None
        return entry[1]

    def read(self, receiver_uuid: uuid.UUID) -> Receiver | None:
        """A fresh read: the endpoint first (the older kind), then the destination."""
        receiver = _read(receiver_uuid)
        if receiver is None:
            self._entries.pop(receiver_uuid, None)
        else:
            self._entries[receiver_uuid] = (time.monotonic(), receiver)
        return receiver

    def drop(self, receiver_uuid: uuid.UUID) -> None:
        self._entries.pop(receiver_uuid, None)


receiver_cache = ReceiverCache()
