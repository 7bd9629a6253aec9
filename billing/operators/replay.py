"""Fetch the events that never reached us (``manage.py stripe_replay_events``, and the
admin's "fetch missed events" for one object).

Stripe keeps a list of events for 30 days: v1 (snapshot) events at ``/v1/events``, v2 (thin)
events at ``/v2/core/events``. A deployment on thin events (``STRIPE_EVENT_PAYLOAD=thin``)
replays from the v2 list, which filters by object itself; otherwise from the v1 list. Each
listed event not already in the inbox is stored exactly as a webhook delivery of it would be
(``billing.webhooks.intake.event_store``: unique on the event id, queued for processing on
commit; a thin event with its full event, which the v2 list brings whole), then processed by
the normal pipeline, which acts on the object's latest state (and applies a change once if
it is stored both ways). Running a replay twice stores nothing the second time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing import permissions, stripe_api
from billing import types as stripe_types
from billing.console import audit
from billing.models import AuditEntry, InboundEvent, PayloadStyle
from billing.stripe_api import v2
from billing.webhooks import intake, registry, thin

# How far back Stripe lists events, and how many types one list call may name.
WINDOW = timedelta(days=30)
TYPES_PER_LIST = 20
EVENT_TYPE = re.compile(r"^[a-z_]+(\.[a-z_]+)+$|^[a-z_]+(\.[a-z_]+)*\.\*$")


class ReplayError(Exception):
    """The replay cannot run as asked; ``message`` says why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class ReplayResult:
    listed: int = 0  # events Stripe listed (for one object: those about it)
    stored: int = 0  # new: stored and queued for processing
    known: int = 0  # already in the inbox (delivered, or replayed before)
    api_calls: int = 0


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _types_checked(types: Iterable[str] | None) -> list[str]:
    chosen = sorted(set(types)) if types else registry.subscribed_event_types()
    wrong = [t for t in chosen if not EVENT_TYPE.match(t)]
    if wrong:
        raise ReplayError(
            f"Not an event type: {', '.join(wrong)} (e.g. invoice.paid or customer.*)."
        )
    return chosen


def events_replay(
    *,
    since: datetime,
    types: Iterable[str] | None = None,
    object_id: str | None = None,
    style: str | None = None,
) -> ReplayResult:
    """Store and queue every event since ``since`` (of ``types``; by default those webhook
    endpoints subscribe to) that is not in the inbox yet; with ``object_id``, only events
    about that object. ``style`` (default ``STRIPE_EVENT_PAYLOAD``): ``thin`` reads the v2
    events list. Raises ``ReplayError`` for a time outside Stripe's 30-day window."""
    now = timezone.now()
    if since < now - WINDOW:
        raise ReplayError(
            f"Stripe lists events of the last 30 days only; {since:%Y-%m-%d %H:%M} is older. "
            f"Use a time after {now - WINDOW:%Y-%m-%d %H:%M} (a backfill covers older state)."
        )
    if since > now:
        raise ReplayError(f"{since:%Y-%m-%d %H:%M} is in the future.")
    result = ReplayResult()
    calls_at = stripe_api.calls_total()
    if (style or settings.STRIPE_EVENT_PAYLOAD) == PayloadStyle.THIN:
        _thin_replay(since=since, types=_types_checked(types), object_id=object_id, result=result)
        result.api_calls = stripe_api.calls_total() - calls_at
        return result
    for chunk in _chunks(_types_checked(types), TYPES_PER_LIST):
        params = {"types": chunk, "created": {"gte": int(since.timestamp())}}
        for page in stripe_api.list_pages(object_type="event", params=params):
            listed = page["data"]
            if object_id is not None:
                listed = [e for e in listed if _object_id(e) == object_id]
            _page_store(listed, result)
    result.api_calls = stripe_api.calls_total() - calls_at
    return result


def _object_id(event: dict) -> str | None:
    obj = (event.get("data") or {}).get("object") or {}
    return obj.get("id")


def _page_store(listed: list[dict], result: ReplayResult) -> None:
    result.listed += len(listed)
    known = set(
        InboundEvent.objects.filter(id__in=[e["id"] for e in listed]).values_list("id", flat=True)
    )
    with transaction.atomic():
        # Oldest first within the page (lists are newest first); the pipeline's ordering
        # guard makes the order irrelevant to the outcome, not to the history's readability.
        for event in reversed(listed):
            if event["id"] in known:
                result.known += 1
                continue
            if intake.event_store(payload=event).created:
                result.stored += 1
            else:
                result.known += 1  # arrived by webhook since the page was read


def _thin_replay(
    *, since: datetime, types: list[str], object_id: str | None, result: ReplayResult
) -> None:
    """The v2 events list, which filters by object and by exact type (no ``*``)."""
    if any("*" in t for t in types):
        raise ReplayError("Thin events are listed by exact type: name each (no customer.*).")
    for chunk in _chunks(thin.thin_types(types), TYPES_PER_LIST):
        params = {"types": chunk, "created": {"gte": thin.iso(since)}, "limit": 100}
        if object_id is not None:
            params["object_id"] = object_id
        for page in v2.event_pages(params=params):
            listed = page["data"]
            result.listed += len(listed)
            ids = [e["id"] for e in listed]
            known = set(InboundEvent.objects.filter(id__in=ids).values_list("id", flat=True))
            with transaction.atomic():
                for event in reversed(listed):  # oldest first, as in ``_page_store``
                    stored = event["id"] not in known and intake.event_store(
                        payload=thin.notification_of(event), fetched=event
                    )
                    if stored and stored.created:
                        result.stored += 1
                    else:
                        result.known += 1


def object_events_fetch(*, actor, object_type: str, stripe_id: str) -> ReplayResult:
    """The console's "Fetch missed events" for one object, by a person: checked against
    their permissions, audited (the object's console log and Django's admin log), then
    ``object_events_replay``. Raises ``ReplayError`` or ``StripeAPIError`` after auditing."""
    audit.require(actor, [permissions.RESYNC])
    logged = {
        "actor": actor,
        "object_type": object_type,
        "stripe_id": stripe_id,
        "action": AuditEntry.Action.FETCH_EVENTS,
    }
    try:
        result = object_events_replay(object_type=object_type, stripe_id=stripe_id)
    except (ReplayError, stripe_api.StripeAPIError) as exc:
        audit.entry(**logged, result=AuditEntry.Result.FAILED, message=exc.message)
        raise
    message = (
        f"{result.listed} listed by Stripe, {result.stored} missed (stored and queued), "
        f"{result.known} already received"
    )
    audit.entry(
        **logged,
        result=AuditEntry.Result.DONE if result.stored else AuditEntry.Result.UNCHANGED,
        message=message,
    )
    model = stripe_types.model_for(object_type)
    row = model.objects.filter(id=stripe_id).first() if model is not None else None
    audit.log_entry(
        actor=actor, rows=[row] if row else [], message=f"Fetched missed events: {message}"
    )
    return result


def object_events_replay(*, object_type: str, stripe_id: str) -> ReplayResult:
    """The admin's "fetch missed events" for one object: every event of the types handled
    for ``object_type`` in Stripe's window, since the object was created, that is about it.

    Stripe cannot filter events by object, so this lists the object type's events (pages of
    100, its types named) and keeps those about ``stripe_id``.
    """
    types = [t for t in registry.HANDLERS if registry.object_type_for_event_type(t) == object_type]
    if not types:
        raise ReplayError(f"No event types are handled for {object_type!r} objects.")
    since = timezone.now() - WINDOW + timedelta(minutes=1)
    model = stripe_types.model_for(object_type)
    row = model.objects.filter(id=stripe_id).first() if model is not None else None
    created = (row.stripe_data or {}).get("created") if row is not None else None
    if isinstance(created, int):
        since = max(since, datetime.fromtimestamp(created, tz=since.tzinfo))
    return events_replay(since=since, types=types, object_id=stripe_id)
