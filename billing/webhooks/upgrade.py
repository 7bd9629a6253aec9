"""Webhook endpoints as code: sync, upgrade, retire.

An endpoint's API version is fixed when it is created, so moving to a new version means a
second endpoint at that version, both delivering for a while (intake stores each event once,
by id, whichever endpoint brought it), then retiring the old one. Retiring is refused while
Stripe still holds an event for the old endpoint that nothing else will bring: an event Stripe
has not delivered everywhere (``GET /v1/events?delivery_success=false``), of a type the old
endpoint takes, that this deployment has not stored, and that no other live endpoint of ours
was subscribed to when it was created.

Stripe is asked, then the mirror is written from its answer (never a transaction held across
a call). The signing secret, which Stripe returns only when an endpoint is created, is kept in
``WebhookEndpoint.secret`` alone, never in the mirrored ``stripe_data``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from billing import mirror, stripe_api
from billing.models import InboundEvent, WebhookDelivery
from billing.webhooks import registry
from billing.webhooks.destinations import receiver_get, receivers_list
from billing.webhooks.endpoints import (
    Endpoint,
    EndpointError,
    created_at,
    endpoint_get,
    endpoints_list,
    webhook_endpoint_create,
    webhook_endpoint_write,
)
from billing.webhooks.versions import api_version_validate

# Stripe retries a failed live-mode delivery for up to three days; older failures are final.
RETRY_WINDOW = timedelta(days=3)


# --- sync ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    endpoint: Endpoint
    action: str  # created, updated, unchanged
    changes: dict[str, Any]
    others: list[Endpoint]  # this deployment's other endpoints in Stripe (retire candidates)


def webhook_endpoint_sync(*, base_url: str) -> SyncResult:
    """Make this deployment's endpoint exist, enabled, at the pinned version, subscribed to
    exactly the handled event types. Running it again changes nothing.

    An endpoint's version cannot be changed in Stripe: when this deployment's endpoint is at
    another version, use ``webhook_endpoint_upgrade`` (a second endpoint), not sync.
    """
    base_url = base_url_validate(base_url)
    version = settings.STRIPE_API_VERSION
    wanted = registry.subscribed_event_types()
    ours = [e for e in endpoints_list() if e.in_stripe and e.is_for(base_url)]
    verifiable = [e for e in ours if e.local and e.has_secret]
    current = [e for e in verifiable if e.api_version == version]
    if not current:
        if verifiable:
            names = ", ".join(f"{e.id} ({e.api_version})" for e in verifiable)
            raise EndpointError(
                f"This deployment's endpoint is at another API version: {names}; the pinned "
                f"version is {version}. An endpoint's version cannot change: run "
                f"`manage.py stripe_webhooks upgrade --to {version}`, then retire the old one."
            )
        created = webhook_endpoint_create(
            base_url=base_url, api_version=version, enabled_events=wanted
        )
        endpoint = endpoint_get(endpoint_id=created.id)
        return SyncResult(
            endpoint=endpoint,
            action="created",
            changes={"api_version": version, "enabled_events": wanted},
            others=[e for e in ours if e.id != endpoint.id],
        )
    endpoint = current[0]  # newest first
    changes: dict[str, Any] = {}
    if sorted(endpoint.enabled_events) != wanted:
        changes["enabled_events"] = wanted
    if endpoint.status != "enabled":
        changes["disabled"] = False
    if changes:
        started = mirror.fetch_started()
        updated = stripe_api.update(
            object_type="webhook_endpoint", stripe_id=endpoint.id, params=changes
        )
        webhook_endpoint_write(data=updated, started_at=started)
        endpoint = endpoint_get(endpoint_id=endpoint.id)
    return SyncResult(
        endpoint=endpoint,
        action="updated" if changes else "unchanged",
        changes=changes,
        others=[e for e in ours if e.id != endpoint.id],
    )


def base_url_validate(base_url: str) -> str:
    base_url = (base_url or "").rstrip("/")
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", base_url):
        raise EndpointError(
            f"--base-url {base_url!r} is not an http(s) URL (e.g. https://shop.example.com)."
        )
    return base_url


# --- upgrade ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overlap:
    """What one endpoint brought since the upgrade began."""

    endpoint: Endpoint
    received: int  # distinct events it delivered
    only_here: int  # of which no other endpoint delivered


@dataclass(frozen=True)
class UpgradeResult:
    endpoint: Endpoint
    created: bool
    overlap: list[Overlap]


def webhook_endpoint_upgrade(*, to_version: str, base_url: str | None = None) -> UpgradeResult:
    """A second endpoint for this deployment at ``to_version`` (or the existing one).

    Both endpoints deliver from then on; intake stores each event once whichever brings it,
    so nothing is processed twice. Retire the old endpoint once ``overlap`` shows the new one
    brings everything.
    """
    to_version = api_version_validate(to_version)
    endpoints = endpoints_list()
    if base_url is None:
        bases = {e.base_url for e in endpoints if e.usable}
        if len(bases) > 1:
            raise EndpointError(
                "Endpoints for several sites exist (" + ", ".join(sorted(bases)) + "): "
                "name this deployment's with --base-url."
            )
        base_url = bases.pop() if bases else settings.SITE_URL
    base_url = base_url_validate(base_url)
    target = next(
        (e for e in endpoints if e.usable and e.is_for(base_url) and e.api_version == to_version),
        None,
    )
    created = target is None
    if created:
        row = webhook_endpoint_create(
            base_url=base_url,
            api_version=to_version,
            enabled_events=registry.subscribed_event_types(),
        )
        target = endpoint_get(endpoint_id=row.id)
    return UpgradeResult(
        endpoint=target, created=created, overlap=upgrade_overlap(new=target, base_url=base_url)
    )


def upgrade_overlap(*, new: Endpoint, base_url: str) -> list[Overlap]:
    """Per endpoint or event destination of this deployment: changes received since ``new``
    was created. A change is an event, or a snapshot event and its thin twin together (known
    once the thin one is processed: until then it counts on its own)."""
    since = new.created or timezone.now()
    ours = [e for e in receivers_list() if e.is_for(base_url) and e.in_stripe and e.uuid]
    deliveries = (
        WebhookDelivery.objects.filter(
            endpoint_uuid__in=[e.uuid for e in ours], event__isnull=False, received_at__gte=since
        )
        .values_list("endpoint_uuid", "event_id", "event__snapshot_event")
        .distinct()
    )
    by_change: dict[str, set[str]] = {}
    for receiver_uuid, event_id, twin in deliveries:
        by_change.setdefault(twin or event_id, set()).add(str(receiver_uuid))
    result = []
    for endpoint in ours:
        mine = [key for key, where in by_change.items() if endpoint.uuid in where]
        only = sum(1 for key in mine if by_change[key] == {endpoint.uuid})
        result.append(Overlap(endpoint=endpoint, received=len(mine), only_here=only))
    return result


# --- retire -------------------------------------------------------------------------------


def webhook_endpoint_at_risk(*, endpoint_id: str) -> list[dict[str, Any]]:
    """Events Stripe still holds for this endpoint that nothing else will bring here.

    Stripe lists events not yet delivered to every endpoint (``delivery_success=false``) but
    not which endpoint is behind; an event counts when this endpoint takes its type, it was
    created since the endpoint (and within Stripe's retry window), this deployment has not
    stored it, and no other enabled endpoint of ours already existed and took its type then.
    """
    endpoint = endpoint_get(endpoint_id=endpoint_id)
    others = [e for e in receivers_list() if e.usable and e.id != endpoint.id]
    since = max(endpoint.created or timezone.now(), timezone.now() - RETRY_WINDOW)
    subscribed = set(endpoint.enabled_events)
    candidates = [
        stripe_api.as_dict(e)
        for e in stripe_api.list_all(
            object_type="event",
            params={"delivery_success": False, "created": {"gte": int(since.timestamp())}},
        )
    ]
    candidates = [e for e in candidates if "*" in subscribed or e["type"] in subscribed]
    ids = [e["id"] for e in candidates]
    stored = set(InboundEvent.objects.filter(id__in=ids).values_list("id", flat=True))
    # ... or its thin twin (a thin event standing for it) is
    stored |= set(
        InboundEvent.objects.filter(snapshot_event__in=ids).values_list("snapshot_event", flat=True)
    )

    def covered(event: dict[str, Any]) -> bool:
        created = created_at(event["created"])
        return any(
            o.created is not None and o.created < created and o.takes(event["type"]) for o in others
        )

    return [e for e in candidates if e["id"] not in stored and not covered(e)]


def webhook_endpoint_successors(*, endpoint_id: str) -> list[Endpoint]:
    """Other enabled, verifiable endpoints or event destinations for the same site as
    ``endpoint_id`` (an endpoint or a destination)."""
    endpoint = receiver_get(receiver_id=endpoint_id)
    return [
        e
        for e in receivers_list()
        if e.id != endpoint.id and e.usable and e.base_url == endpoint.base_url
    ]


def at_risk_message(*, endpoint_id: str, at_risk: list[dict[str, Any]]) -> str:
    listed = ", ".join(f"{e['id']} ({e['type']})" for e in at_risk[:10])
    more = f" and {len(at_risk) - 10} more" if len(at_risk) > 10 else ""
    return (
        f"{len(at_risk)} event(s) are still pending delivery to {endpoint_id} and have not "
        f"reached this deployment any other way: {listed}{more}. Retiring it now would lose "
        f"them. Let Stripe's retries deliver them (check the endpoint answers 2xx), then run "
        f"retire again."
    )


def webhook_endpoint_disable(*, endpoint_id: str, disabled: bool = True) -> Endpoint:
    """Stop (or resume) Stripe's deliveries to an endpoint.

    Stripe drops a retry that falls due while the endpoint is disabled, so an endpoint with
    events at risk must not be disabled (the retire command checks first).
    """
    started = mirror.fetch_started()
    updated = stripe_api.update(
        object_type="webhook_endpoint", stripe_id=endpoint_id, params={"disabled": disabled}
    )
    webhook_endpoint_write(data=updated, started_at=started)
    return endpoint_get(endpoint_id=endpoint_id)


def webhook_endpoint_delete(*, endpoint_id: str) -> None:
    """Disable, then delete an endpoint in Stripe, refusing while events are at risk (see the
    module doc).

    The local row stays (deliveries refer to it), disabled and marked deleted, so intake
    refuses anything still sent to its URL.
    """
    at_risk = webhook_endpoint_at_risk(endpoint_id=endpoint_id)
    if at_risk:
        raise EndpointError(at_risk_message(endpoint_id=endpoint_id, at_risk=at_risk))
    if endpoint_get(endpoint_id=endpoint_id).status != "disabled":
        webhook_endpoint_disable(endpoint_id=endpoint_id)
    started = mirror.fetch_started()
    deleted = stripe_api.delete(object_type="webhook_endpoint", stripe_id=endpoint_id)
    webhook_endpoint_write(data=deleted, started_at=started)
