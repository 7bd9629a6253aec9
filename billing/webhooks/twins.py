"""One change, two events: the snapshot event and the thin event Stripe sends for the same
change while a deployment receives both (an upgrade from a webhook endpoint to a thin event
destination, or back, with both live until the old one is retired).

They have different ids (the v1 event ``evt_…`` and a v2 event standing for it), so storing by
id keeps both. What ties them is the v2 event's ``snapshot_event``, the id of the v1 event it
stands for: both are keyed by that v1 id here (``twin_key``). Whichever is processed first
applies the change (one fetch, one mirror write, one handler run); the other is then marked
``duplicate``, without a fetch. Both take the same lock, keyed by the change, in the
transaction that applies it, so two workers on the twins at once apply it once.

A thin notification does not say which v1 event it stands for; its full event does, at the cost
of one request. That request is made only when a twin may exist: a snapshot receiver of this
deployment is live, or a snapshot event of that type about that object arrived within Stripe's
retry window (the endpoint was retired since). A deployment on thin events alone pays nothing.
"""

from __future__ import annotations

from datetime import timedelta

from djstripe.models import WebhookEndpoint

from billing.mirror import locks
from billing.models import EventDestination, InboundEvent, PayloadStyle
from billing.webhooks import thin

# Stripe retries a failed delivery for up to three days: a snapshot twin can come that late.
RETRY_WINDOW = timedelta(days=3)


def twin_key(event: InboundEvent) -> str:
    """The v1 event id both twins share ("" for a thin event not paired, or without one)."""
    if event.payload_style == PayloadStyle.THIN:
        return event.snapshot_event
    return event.id


def snapshot_receivers_live() -> bool:
    """Whether Stripe may be sending this deployment snapshot events: an enabled webhook
    endpoint (or snapshot event destination) it holds the secret of."""
    endpoints = WebhookEndpoint.objects.exclude(status="disabled").exclude(secret="")
    return (
        endpoints.exists()
        or EventDestination.objects.filter(
            status=EventDestination.Status.ENABLED, event_payload=PayloadStyle.SNAPSHOT
        ).exists()
    )


def _twin_possible(event: InboundEvent) -> bool:
    if snapshot_receivers_live():
        return True
    return InboundEvent.objects.filter(
        object_id=event.object_id,
        type=event.type,
        payload_style=PayloadStyle.SNAPSHOT,
        received_at__gte=event.received_at - RETRY_WINDOW,
    ).exists()


def pair(event: InboundEvent) -> None:
    """Learn which snapshot event a thin event stands for, when it may have a twin here (its
    full event, fetched once and kept). Call with no transaction open: it may call Stripe."""
    if event.payload_style != PayloadStyle.THIN or event.snapshot_event:
        return
    if event.fetched_event is None and _twin_possible(event):
        thin.full_event(event)


def applied_twin(event: InboundEvent) -> InboundEvent | None:
    """The event's twin, once it has applied the change (processed); None otherwise."""
    key = twin_key(event)
    if not key:
        return None
    applied = InboundEvent.objects.filter(status=InboundEvent.Status.PROCESSED).only(
        "id", "payload_style", "processed_at"
    )
    if event.payload_style == PayloadStyle.THIN:
        return applied.filter(pk=key).first()
    return applied.filter(snapshot_event=key).exclude(pk=event.pk).first()


def change_lock(event: InboundEvent) -> None:
    """The change's lock, first thing in the transaction that applies it (a no-op for an
    event that cannot have a twin). Twins wait for each other here; nothing else takes it."""
    key = twin_key(event)
    if key:
        locks.take([f"change:{key}"])


def duplicate_outcome(twin: InboundEvent) -> str:
    return (
        f"the same change as {twin.id} ({twin.payload_style} event), which applied it: "
        "nothing fetched, nothing written"
    )
