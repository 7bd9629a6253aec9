"""The Stripe API versions in play: the pinned one, stripe-python's and dj-stripe's, and the
versions of the events that arrived (counted by the hour: ``billing.webhooks.traffic``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import stripe
from django.conf import settings
from django.utils import timezone
from djstripe.settings import djstripe_settings

from billing.webhooks import traffic
from billing.webhooks.endpoints import EndpointError

VERSION_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")


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
