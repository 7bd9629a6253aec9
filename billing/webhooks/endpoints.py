"""Webhook endpoints: created in Stripe with this deployment's URL and secret, read back with
what each delivered, disabled and deleted. The signing secret, which Stripe returns only when an
endpoint is created, is kept in ``WebhookEndpoint.secret`` alone, never in the mirrored
``stripe_data``; Stripe is asked first, then the mirror is written from its answer."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from djstripe.models import WebhookEndpoint

from billing import mirror, stripe_api
from billing.models import WebhookSecret
from billing.webhooks import registry, traffic

WEBHOOK_PATH = "/stripe/webhook/"


class EndpointError(Exception):
    """An endpoint operation cannot go ahead; the message says what to do instead."""


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
    url = f"{base_url.rstrip('/')}{WEBHOOK_PATH}{local_uuid}/"
    started = mirror.fetch_started()
    created = stripe_api.create(
        object_type="webhook_endpoint",
        params={
            "url": url,
            "enabled_events": enabled_events or registry.subscribed_event_types(),
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
    cache.delete(_LISTED_KEY)
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
    # What Stripe sends it: snapshot (v1 events, at api_version) or thin (unversioned).
    payload: str = "snapshot"
    uuid: str = ""  # the local uuid in its URL ("" when this deployment has no row for it)

    @property
    def kind(self) -> str:
        return "event destination" if self.id.startswith("ed_") else "webhook endpoint"

    @property
    def enabled(self) -> bool:
        return self.in_stripe and self.status == "enabled"

    @property
    def version_matches(self) -> bool:
        """Thin events are unversioned: their objects are fetched at the pinned version."""
        return self.payload == "thin" or self.api_version == settings.STRIPE_API_VERSION

    def takes(self, event_type: str) -> bool:
        """Whether Stripe sends it events of this (v1) type, in its payload style."""
        enabled = set(self.enabled_events)
        return "*" in enabled or event_type in enabled or f"v1.{event_type}" in enabled

    @property
    def usable(self) -> bool:
        """Stripe delivers to it and this deployment can verify what arrives."""
        return self.enabled and self.local and self.has_secret

    def is_for(self, base_url: str) -> bool:
        return self.url.startswith(base_url.rstrip("/") + WEBHOOK_PATH)

    @property
    def base_url(self) -> str:
        return self.url.split(WEBHOOK_PATH, 1)[0]


def types_difference(
    enabled_events: Iterable[str], *, thin: bool = False
) -> tuple[list[str], list[str]]:
    """(handled types the endpoint misses, subscribed types no code handles); a thin
    destination's are named ``v1.<type>``."""
    wanted = set(registry.subscribed_event_types())
    if thin:
        wanted = {f"v1.{t}" for t in wanted}
    subscribed = set(enabled_events or ())
    if "*" in subscribed:
        return [], ["*"]
    return sorted(wanted - subscribed), sorted(subscribed - wanted)


def created_at(value: Any) -> datetime | None:
    if isinstance(value, int):
        return datetime.fromtimestamp(value, tz=UTC)
    return value


def _received_since(endpoints: dict[str, WebhookEndpoint], since: datetime) -> dict[str, int]:
    """Distinct events each local endpoint brought (first copy or duplicate) since ``since``,
    by the hour (``billing.traffic``)."""
    delivered = traffic.events_delivered(since=since, by="endpoint_uuid")
    return {endpoint_id: delivered[row.djstripe_uuid] for endpoint_id, row in endpoints.items()}


# What Stripe listed last, for pages that may show it a few minutes old (max_age).
_LISTED_KEY = "billing:webhook-endpoints:listed"


def _stripe_endpoints(max_age: int) -> dict[str, dict[str, Any]]:
    if max_age and (listed := cache.get(_LISTED_KEY)) is not None:
        return listed
    listed = {}
    for obj in stripe_api.list_all(object_type="webhook_endpoint"):
        data = stripe_api.as_dict(obj)
        data.pop("secret", None)
        listed[data["id"]] = data
    cache.set(_LISTED_KEY, listed, settings.CONSOLE_ENDPOINTS_CACHE_SECONDS)
    return listed


def endpoints_list(*, from_stripe: bool = True, max_age: int = 0) -> list[Endpoint]:
    """Every endpoint in Stripe and in the local mirror, newest first.

    ``from_stripe=False`` reads the mirror only (no API call), for pages and system checks;
    ``max_age`` (seconds) accepts Stripe's list read that long ago (forgotten whenever this
    deployment writes an endpoint).
    """
    remote = _stripe_endpoints(max_age) if from_stripe else {}
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
                created=created_at(data.get("created")) or (row.created if row else None),
                in_stripe=in_stripe,
                local=row is not None,
                has_secret=bool(row and row.secret),
                received_24h=received.get(endpoint_id, 0),
                missing_types=missing,
                extra_types=extra,
                uuid=str(row.djstripe_uuid) if row is not None else "",
            )
        )
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(result, key=lambda e: (e.created or epoch, e.id), reverse=True)


def endpoint_get(*, endpoint_id: str) -> Endpoint:
    for endpoint in endpoints_list():
        if endpoint.id == endpoint_id:
            return endpoint
    raise EndpointError(f"No webhook endpoint {endpoint_id}.")
