"""Reads of the Stripe boundary for the support console: event history, audit, sync state.

Each takes a list of Stripe ids, so a page about one object and a page about an order (many
linked objects) make the same, fixed number of queries however many rows there are.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Prefetch, Q
from django.db.models.functions import Lower
from django.db.models.lookups import Exact, StartsWith

from billing import types
from billing.models import AuditEntry, InboundEvent, ObjectSync, WebhookDelivery

HISTORY_LIMIT = 200


def event_history(*, stripe_ids: Iterable[str], limit: int = HISTORY_LIMIT) -> list[InboundEvent]:
    """Stored events of these objects, newest first, each with its deliveries (3 queries)."""
    deliveries = WebhookDelivery.objects.select_related("endpoint").order_by("received_at")
    return list(
        InboundEvent.objects.filter(object_id__in=list(stripe_ids))
        .prefetch_related(Prefetch("deliveries", queryset=deliveries))
        .order_by("-created", "-received_at")[:limit]
    )


def audit_entries(*, stripe_ids: Iterable[str], limit: int = HISTORY_LIMIT) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(stripe_id__in=list(stripe_ids))
        .select_related("job")
        .order_by("-at", "-pk")[:limit]
    )


def sync_states(*, stripe_ids: Iterable[str]) -> dict[str, ObjectSync]:
    """The ordering guard's record per object (when it was last fetched from Stripe)."""
    return {
        state.stripe_id: state
        for state in ObjectSync.objects.filter(stripe_id__in=list(stripe_ids)).defer("snapshot")
    }


def last_synced(*, row, state: ObjectSync | None) -> datetime | None:
    """When the mirror row last took Stripe's data: the guard's record, else the row's write."""
    if state is not None and state.synced_at is not None:
        return state.synced_at
    return getattr(row, "djstripe_updated", None)


def object_type_for_id(stripe_id: str) -> str | None:
    return types.for_id(stripe_id)


# A shorter beginning of an email would match a good part of a big shop.
EMAIL_PREFIX_MIN = 3


def email_lookup(term: str, field: str = "email") -> Q:
    """``field`` holds ``term`` whatever its case, or begins with it when ``term`` ends with
    ``*``: through an index on ``LOWER(field)`` (with PostgreSQL's pattern operators for the
    beginning), never ``LIKE '%…%'``."""
    term = term.strip()
    address = term.rstrip("*").lower()
    if not term.endswith("*"):
        return Q(Exact(Lower(field), address))
    if len(address) < EMAIL_PREFIX_MIN:
        return Q(pk__in=[])
    return Q(StartsWith(Lower(field), address))
