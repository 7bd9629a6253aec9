"""Webhook endpoints and API versions as code: list, sync, upgrade, retire, and what arrived.

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from django.conf import settings
from django.utils import timezone
from djstripe.models import WebhookEndpoint
from djstripe.settings import djstripe_settings

from billing import events, mirror, services, stripe_api, traffic
from billing.models import InboundEvent, WebhookDelivery

WEBHOOK_PATH = "/stripe/webhook/"
# Stripe retries a failed live-mode delivery for up to three days; older failures are final.
RETRY_WINDOW = timedelta(days=3)
VERSION_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")


class EndpointError(Exception):
    """An endpoint operation cannot go ahead; the message says what to do instead."""


# --- Versions -----------------------------------------------------------------------------


def sdk_api_version() -> str:
    """The version this stripe-python release was generated for (not the pinned one)."""
    return stripe._api_version._ApiVersion.CURRENT


def djstripe_api_version() -> str:
    """The version dj-stripe's models are written against."""
    return djstripe_settings.DEFAULT_STRIPE_API_VERSION


def api_version_major(version: str) -> str:
    """A version's release line: ``dahlia`` for ``2026-08-26.dahlia``.

    Since 2024-09-30.acacia, Stripe makes breaking changes only in a new named release; the
    monthly versions within one are additive. Older, dateless-named versions could each break,
    so each is its own line.
    """
    return version.split(".", 1)[1] if "." in version else version


def api_versions_compatible(a: str, b: str) -> bool:
    return bool(a) and bool(b) and api_version_major(a) == api_version_major(b)


def api_version_validate(version: str) -> str:
    if not VERSION_FORMAT.match(version or ""):
        raise EndpointError(
            f"{version!r} is not a Stripe API version (expected e.g. 2026-08-26.dahlia)."
        )
    return version


# --- Reading endpoints --------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One endpoint as Stripe and this deployment know it."""

    id: str
    url: str
    api_version: str
    status: str  # enabled, disabled; deleted (retired) or missing when only the mirror has it
    enabled_events: list[str]
    created: datetime | None
    in_stripe: bool
    local: bool  # a local row exists, so deliveries to it can be verified
    has_secret: bool
    received_24h: int = 0
    missing_types: list[str] = field(default_factory=list)  # handled but not subscribed
    extra_types: list[str] = field(default_factory=list)  # subscribed but handled by nobody

    @property
    def enabled(self) -> bool:
        return self.in_stripe and self.status == "enabled"

    @property
    def version_matches(self) -> bool:
        return self.api_version == settings.STRIPE_API_VERSION

    @property
    def usable(self) -> bool:
        """Stripe delivers to it and this deployment can verify what arrives."""
        return self.enabled and self.local and self.has_secret

    def is_for(self, base_url: str) -> bool:
        return self.url.startswith(base_url.rstrip("/") + WEBHOOK_PATH)

    @property
    def base_url(self) -> str:
        return self.url.split(WEBHOOK_PATH, 1)[0]


def types_difference(enabled_events: Iterable[str]) -> tuple[list[str], list[str]]:
    """(handled types the endpoint misses, subscribed types no code handles)."""
    wanted = set(events.subscribed_event_types())
    subscribed = set(enabled_events or ())
    if "*" in subscribed:
        return [], ["*"]
    return sorted(wanted - subscribed), sorted(subscribed - wanted)


def _created(value: Any) -> datetime | None:
    if isinstance(value, int):
        return datetime.fromtimestamp(value, tz=UTC)
    return value


def _received_since(endpoints: dict[str, WebhookEndpoint], since: datetime) -> dict[str, int]:
    """Distinct events each local endpoint brought (first copy or duplicate) since ``since``,
    by the hour (``billing.traffic``)."""
    delivered = traffic.events_delivered(since=since, by="endpoint_uuid")
    return {endpoint_id: delivered[row.djstripe_uuid] for endpoint_id, row in endpoints.items()}


def endpoints_list(*, from_stripe: bool = True) -> list[Endpoint]:
    """Every endpoint in Stripe and in the local mirror, newest first.

    ``from_stripe=False`` reads the mirror only (no API call), for pages and system checks.
    """
    remote: dict[str, dict[str, Any]] = {}
    if from_stripe:
        for obj in stripe_api.list_all(object_type="webhook_endpoint"):
            data = stripe_api.as_dict(obj)
            remote[data["id"]] = data
    local = {row.id: row for row in WebhookEndpoint.objects.all()}
    received = _received_since(local, timezone.now() - timedelta(hours=24))
    result = []
    for endpoint_id in remote.keys() | local.keys():
        row = local.get(endpoint_id)
        data = remote.get(endpoint_id) or (row.stripe_data if row else {})
        deleted = row is not None and bool((row.stripe_data or {}).get("deleted"))
        in_stripe = endpoint_id in remote if from_stripe else row is not None and not deleted
        enabled_events = list(data.get("enabled_events") or [])
        missing, extra = types_difference(enabled_events)
        result.append(
            Endpoint(
                id=endpoint_id,
                url=data.get("url") or (row.url if row else ""),
                api_version=data.get("api_version") or (row.api_version if row else "") or "",
                status=(data.get("status") or "")
                if in_stripe
                else ("deleted" if deleted else "missing"),
                enabled_events=enabled_events,
                created=_created(data.get("created")) or (row.created if row else None),
                in_stripe=in_stripe,
                local=row is not None,
                has_secret=bool(row and row.secret),
                received_24h=received.get(endpoint_id, 0),
                missing_types=missing,
                extra_types=extra,
            )
        )
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(result, key=lambda e: (e.created or epoch, e.id), reverse=True)


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
    base_url = _base_url_validate(base_url)
    version = settings.STRIPE_API_VERSION
    wanted = events.subscribed_event_types()
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
        created = services.webhook_endpoint_create(
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
        services.webhook_endpoint_write(data=updated, started_at=started)
        endpoint = endpoint_get(endpoint_id=endpoint.id)
    return SyncResult(
        endpoint=endpoint,
        action="updated" if changes else "unchanged",
        changes=changes,
        others=[e for e in ours if e.id != endpoint.id],
    )


def _base_url_validate(base_url: str) -> str:
    base_url = (base_url or "").rstrip("/")
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", base_url):
        raise EndpointError(
            f"--base-url {base_url!r} is not an http(s) URL (e.g. https://shop.example.com)."
        )
    return base_url


def endpoint_get(*, endpoint_id: str) -> Endpoint:
    for endpoint in endpoints_list():
        if endpoint.id == endpoint_id:
            return endpoint
    raise EndpointError(f"No webhook endpoint {endpoint_id}.")


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
    base_url = _base_url_validate(base_url)
    target = next(
        (e for e in endpoints if e.usable and e.is_for(base_url) and e.api_version == to_version),
        None,
    )
    created = target is None
    if created:
        row = services.webhook_endpoint_create(
            base_url=base_url,
            api_version=to_version,
            enabled_events=events.subscribed_event_types(),
        )
        target = endpoint_get(endpoint_id=row.id)
    return UpgradeResult(
        endpoint=target, created=created, overlap=upgrade_overlap(new=target, base_url=base_url)
    )


def upgrade_overlap(*, new: Endpoint, base_url: str) -> list[Overlap]:
    """Per endpoint of this deployment: events received since ``new`` was created."""
    since = new.created or timezone.now()
    ours = [e for e in endpoints_list() if e.is_for(base_url) and e.in_stripe]
    ids = [e.id for e in ours]
    deliveries = (
        WebhookDelivery.objects.filter(
            endpoint__id__in=ids, event__isnull=False, received_at__gte=since
        )
        .values_list("endpoint__id", "event_id")
        .distinct()
    )
    by_event: dict[str, set[str]] = {}
    for endpoint_id, event_id in deliveries:
        by_event.setdefault(event_id, set()).add(endpoint_id)
    result = []
    for endpoint in ours:
        mine = [eid for eid, where in by_event.items() if endpoint.id in where]
        only = sum(1 for eid in mine if by_event[eid] == {endpoint.id})
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
    others = [e for e in endpoints_list() if e.usable and e.id != endpoint.id]
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
    stored = set(
        InboundEvent.objects.filter(id__in=[e["id"] for e in candidates]).values_list(
            "id", flat=True
        )
    )

    def covered(event: dict[str, Any]) -> bool:
        created = _created(event["created"])
        return any(
            o.created is not None
            and o.created < created
            and ("*" in o.enabled_events or event["type"] in o.enabled_events)
            for o in others
        )

    return [e for e in candidates if e["id"] not in stored and not covered(e)]


def webhook_endpoint_successors(*, endpoint_id: str) -> list[Endpoint]:
    """Other enabled, verifiable endpoints for the same site as ``endpoint_id``."""
    endpoint = endpoint_get(endpoint_id=endpoint_id)
    return [
        e
        for e in endpoints_list()
        if e.id != endpoint.id and e.usable and e.base_url == endpoint.base_url
    ]


def webhook_endpoint_disable(*, endpoint_id: str, disabled: bool = True) -> Endpoint:
    """Stop (or resume) Stripe's deliveries to an endpoint.

    Stripe drops a retry that falls due while the endpoint is disabled, so an endpoint with
    events at risk must not be disabled (the retire command checks first).
    """
    started = mirror.fetch_started()
    updated = stripe_api.update(
        object_type="webhook_endpoint", stripe_id=endpoint_id, params={"disabled": disabled}
    )
    services.webhook_endpoint_write(data=updated, started_at=started)
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
    mirror.object_write(data=deleted, started_at=started)


def at_risk_message(*, endpoint_id: str, at_risk: list[dict[str, Any]]) -> str:
    listed = ", ".join(f"{e['id']} ({e['type']})" for e in at_risk[:10])
    more = f" and {len(at_risk) - 10} more" if len(at_risk) > 10 else ""
    return (
        f"{len(at_risk)} event(s) are still pending delivery to {endpoint_id} and have not "
        f"reached this deployment any other way: {listed}{more}. Retiring it now would lose "
        f"them. Let Stripe's retries deliver them (check the endpoint answers 2xx), then run "
        f"retire again."
    )


# --- Versions of what arrived ---------------------------------------------------------------


@dataclass(frozen=True)
class VersionSeen:
    api_version: str
    events_7d: int
    events_30d: int
    matches_pinned: bool


def api_versions_seen() -> list[VersionSeen]:
    """API versions of the events delivered in the last 30 days, with counts for 7 and 30
    (by the hour: ``billing.traffic``)."""
    now = timezone.now()
    last_30 = traffic.events_delivered(since=now - timedelta(days=30), by="api_version")
    last_7 = traffic.events_delivered(since=now - timedelta(days=7), by="api_version")
    pinned = settings.STRIPE_API_VERSION
    return [
        VersionSeen(
            api_version=version or "(none)",
            events_7d=last_7.get(version, 0),
            events_30d=count,
            matches_pinned=version == pinned,
        )
        for version, count in sorted(last_30.items(), key=lambda item: -item[1])
        if count
    ]
