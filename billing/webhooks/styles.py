"""Payload styles as code: the event destination this deployment needs when it is on thin
events (``STRIPE_EVENT_PAYLOAD=thin``), a move between a snapshot webhook endpoint and a thin
destination, and the retirement of either.

A move is an upgrade like an API version's: the receiver of the new style is created beside the
old one, both deliver (a change then arrives twice, as a snapshot event and as its thin twin,
and is applied once: ``billing.webhooks.twins``), and the old one is retired once nothing is
pending for it that nothing else brings. Stripe is asked, then the local rows are written from
its answers.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from billing.models import InboundEvent, PayloadStyle
from billing.stripe_api import v2
from billing.webhooks import registry, thin
from billing.webhooks.destinations import (
    event_destination_create,
    event_destination_disable,
    event_destination_remove,
    event_destination_update,
    receiver_get,
    receivers_list,
)
from billing.webhooks.endpoints import Endpoint, EndpointError, webhook_endpoint_create
from billing.webhooks.upgrade import (
    RETRY_WINDOW,
    SyncResult,
    UpgradeResult,
    at_risk_message,
    base_url_validate,
    upgrade_overlap,
    webhook_endpoint_at_risk,
    webhook_endpoint_delete,
    webhook_endpoint_disable,
    webhook_endpoint_sync,
)

STYLES = (PayloadStyle.SNAPSHOT, PayloadStyle.THIN)
TYPES_PER_LIST = 20  # how many types one v2 events list may name


def _style_checked(style: str) -> str:
    if style not in STYLES:
        raise EndpointError(f"{style!r} is not a payload style: use snapshot or thin.")
    return style


def _is_thin_destination(e: Endpoint) -> bool:
    return e.id.startswith("ed_") and e.payload == PayloadStyle.THIN


# --- sync -----------------------------------------------------------------------------------


def receiver_sync(*, base_url: str, style: str | None = None) -> SyncResult:
    """Make this deployment's receiver of its payload style (``STRIPE_EVENT_PAYLOAD``) exist,
    enabled, taking exactly the handled event types. Running it again changes nothing. The
    other style's receivers are left alone (``others``: retire them when done with them)."""
    style = _style_checked(style or settings.STRIPE_EVENT_PAYLOAD)
    if style == PayloadStyle.SNAPSHOT:
        result = webhook_endpoint_sync(base_url=base_url)
        base_url = base_url_validate(base_url)
        destinations = [
            e
            for e in receivers_list()
            if e.id.startswith("ed_") and e.in_stripe and e.is_for(base_url)
        ]
        return dataclasses.replace(result, others=result.others + destinations)
    return event_destination_sync(base_url=base_url)


def event_destination_sync(*, base_url: str) -> SyncResult:
    """This deployment's thin destination, created or brought back to what it should be."""
    base_url = base_url_validate(base_url)
    wanted = thin.thin_types(registry.subscribed_event_types())
    ours = [e for e in receivers_list() if e.in_stripe and e.is_for(base_url)]
    usable = [e for e in ours if _is_thin_destination(e) and e.local and e.has_secret]
    if not usable:
        row = event_destination_create(base_url=base_url)
        destination = receiver_get(receiver_id=row.id)
        return SyncResult(
            endpoint=destination,
            action="created",
            changes={"event_payload": PayloadStyle.THIN, "enabled_events": wanted},
            others=[e for e in ours if e.id != destination.id],
        )
    destination = usable[0]  # newest first
    changes: dict[str, Any] = {}
    if sorted(destination.enabled_events) != wanted:
        changes["enabled_events"] = wanted
        destination = event_destination_update(
            destination_id=destination.id, params={"enabled_events": wanted}
        )
    if destination.status != "enabled":
        changes["status"] = "enabled"
        destination = event_destination_disable(destination_id=destination.id, disabled=False)
    return SyncResult(
        endpoint=destination,
        action="updated" if changes else "unchanged",
        changes=changes,
        others=[e for e in ours if e.id != destination.id],
    )


# --- a move between styles ------------------------------------------------------------------


def payload_upgrade(*, to_style: str, base_url: str | None = None) -> UpgradeResult:
    """A receiver of ``to_style`` for this deployment beside its current one (or the existing
    one): a thin destination, or a snapshot endpoint at the pinned version. Both deliver from
    then on; a change that arrives both ways is applied once. Retire the old receiver once
    ``overlap`` shows the new one brings everything."""
    to_style = _style_checked(to_style)
    receivers = receivers_list()
    if base_url is None:
        bases = {e.base_url for e in receivers if e.usable}
        if len(bases) > 1:
            raise EndpointError(
                "Receivers for several sites exist (" + ", ".join(sorted(bases)) + "): name "
                "this deployment's with --base-url."
            )
        base_url = bases.pop() if bases else settings.SITE_URL
    base_url = base_url_validate(base_url)
    pinned = settings.STRIPE_API_VERSION

    def fits(e: Endpoint) -> bool:
        if not (e.usable and e.is_for(base_url)):
            return False
        if to_style == PayloadStyle.THIN:
            return _is_thin_destination(e)
        return e.id.startswith("we_") and e.api_version == pinned

    target = next((e for e in receivers if fits(e)), None)
    created = target is None
    if created:
        if to_style == PayloadStyle.THIN:
            row_id = event_destination_create(base_url=base_url).id
        else:
            row_id = webhook_endpoint_create(base_url=base_url, api_version=pinned).id
        target = receiver_get(receiver_id=row_id)
    return UpgradeResult(
        endpoint=target, created=created, overlap=upgrade_overlap(new=target, base_url=base_url)
    )


# --- retiring either kind -------------------------------------------------------------------


def event_destination_at_risk(*, destination_id: str) -> list[dict[str, Any]]:
    """Thin events Stripe created for this destination that nothing will bring here if it goes.

    The v2 events list says nothing of deliveries, so every event of a type the destination
    takes, created since it exists (within Stripe's retry window), counts unless this
    deployment stored it or its snapshot twin, or another live receiver of ours already
    existed and took its type when it was created.
    """
    destination = receiver_get(receiver_id=destination_id)
    others = [e for e in receivers_list() if e.usable and e.id != destination.id]
    since = max(destination.created or timezone.now(), timezone.now() - RETRY_WINDOW)
    taken = [t for t in destination.enabled_events if t != "*"]
    lists = [taken[i : i + TYPES_PER_LIST] for i in range(0, len(taken), TYPES_PER_LIST)]
    if "*" in destination.enabled_events:
        lists = [[]]
    candidates: list[dict[str, Any]] = []
    for chunk in lists:
        params: dict[str, Any] = {"created": {"gte": thin.iso(since)}, "limit": 100}
        if chunk:
            params["types"] = chunk
        for page in v2.event_pages(params=params):
            candidates.extend(e for e in page["data"] if e.get("type") != thin.PING)
    keys = [e["id"] for e in candidates] + [e.get("snapshot_event") or "" for e in candidates]
    stored = set(
        InboundEvent.objects.filter(id__in=[k for k in keys if k]).values_list("id", flat=True)
    )

    def covered(event: dict[str, Any]) -> bool:
        created = datetime.fromisoformat(event["created"])
        v1_type = thin.handler_type(event["type"])
        return any(
            o.created is not None and o.created < created and o.takes(v1_type) for o in others
        )

    return [
        e
        for e in candidates
        if e["id"] not in stored
        and (e.get("snapshot_event") or "") not in stored
        and not covered(e)
    ]


def receiver_at_risk(*, receiver_id: str) -> list[dict[str, Any]]:
    if receiver_id.startswith("ed_"):
        return event_destination_at_risk(destination_id=receiver_id)
    return webhook_endpoint_at_risk(endpoint_id=receiver_id)


def receiver_disable(*, receiver_id: str, disabled: bool = True) -> Endpoint:
    if receiver_id.startswith("ed_"):
        return event_destination_disable(destination_id=receiver_id, disabled=disabled)
    return webhook_endpoint_disable(endpoint_id=receiver_id, disabled=disabled)


def receiver_delete(*, receiver_id: str) -> None:
    """Disable, then delete an endpoint or a destination in Stripe, refusing while events are
    at risk. The local row stays, so intake refuses what is still sent to its URL."""
    if not receiver_id.startswith("ed_"):
        webhook_endpoint_delete(endpoint_id=receiver_id)
        return
    at_risk = event_destination_at_risk(destination_id=receiver_id)
    if at_risk:
        raise EndpointError(at_risk_message(endpoint_id=receiver_id, at_risk=at_risk))
    if receiver_get(receiver_id=receiver_id).status != "disabled":
        event_destination_disable(destination_id=receiver_id)
    event_destination_remove(destination_id=receiver_id)
