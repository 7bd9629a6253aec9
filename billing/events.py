"""Event processing: the ordering guard, the mirror upsert and the handler registry.

Rules this module keeps (see DESIGN.md):
- act on the latest object, re-fetched from Stripe with the expansions handlers need, never on
  the event's snapshot;
- the mirror never goes back to an older state: fetch and write happen under a per-object
  lock, so a later fetch is always written after an earlier one;
- a fetch that started after an event was received already reflects that event, so a burst of
  events for one object costs one fetch, not one each (coalescing);
- an event's effects happen once: the event row is locked for the whole processing and its
  status checked first; handlers are idempotent themselves as a second layer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from billing import mirror, stripe_api
from billing.models import InboundEvent, ObjectSync

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventContext:
    """What a handler gets: the stored event, the latest object, and its mirror row."""

    event: InboundEvent
    obj: dict[str, Any]  # the object as Stripe has it now, with the registered expansions
    mirror: Any | None  # the dj-stripe row just upserted (None for types without a model)
    coalesced: bool  # True when an earlier fetch (started after this event arrived) served it


Handler = Callable[[EventContext], str | None]

# Event type -> business handler (None: the event only refreshes the mirror).
HANDLERS: dict[str, Handler | None] = {}
# Stripe object type -> expansions to ask for whenever that object is fetched.
EXPANSIONS: dict[str, set[str]] = {}

# Event types whose object type is not their first dotted segment.
_EVENT_OBJECT_PREFIXES = {
    "customer.subscription.": "subscription",
    "checkout.session.": "checkout.session",
    "charge.refund.": "refund",
    "charge.dispute.": "dispute",
}


def object_type_for_event_type(event_type: str) -> str:
    for prefix, object_type in _EVENT_OBJECT_PREFIXES.items():
        if event_type.startswith(prefix):
            return object_type
    return event_type.rsplit(".", 1)[0]


def register(*event_types: str, expand: Iterable[str] = ()) -> Callable[[Handler], Handler]:
    """Register a business handler for event types, with the expansions it reads.

    Handlers must be idempotent (state check under ``select_for_update``): the pipeline
    processes each event once, but the same business fact can arrive as several events.
    """

    def decorator(fn: Handler) -> Handler:
        for event_type in event_types:
            if HANDLERS.get(event_type) not in (None, fn):
                raise ValueError(f"{event_type} already has a handler: {HANDLERS[event_type]}")
            HANDLERS[event_type] = fn
            EXPANSIONS.setdefault(object_type_for_event_type(event_type), set()).update(expand)
        return fn

    return decorator


def register_mirror(*event_types: str, expand: Iterable[str] = ()) -> None:
    """Event types that only keep the mirror current (no business handler)."""
    for event_type in event_types:
        HANDLERS.setdefault(event_type, None)
        EXPANSIONS.setdefault(object_type_for_event_type(event_type), set()).update(expand)


def subscribed_event_types() -> list[str]:
    """What webhook endpoints subscribe to: the types some code handles, never ``*``."""
    return sorted(HANDLERS)


# --- Locks ---------------------------------------------------------------------------------


@contextmanager
def object_lock(stripe_id: str):
    """Serialise work on one Stripe object across workers (inside a transaction).

    PostgreSQL: a transaction-scoped advisory lock on the id, released at commit/rollback.
    SQLite (the embedded default): transactions begin IMMEDIATE (see settings), holding the
    database's single write lock from BEGIN to COMMIT, so they are serialised already.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [stripe_id])
    yield


def db_now() -> datetime:
    """The database's clock, so web and worker machines compare times on one clock."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()")
            return cursor.fetchone()[0]
    return timezone.now()


# --- The mirror, refreshed under the ordering guard ----------------------------------------


@dataclass(frozen=True)
class Refreshed:
    obj: dict[str, Any]
    mirror: Any | None
    coalesced: bool
    deleted: bool


def object_refresh(
    *, object_type: str, stripe_id: str, not_older_than: datetime | None = None
) -> Refreshed:
    """Bring the mirror of one object up to Stripe's current state; return that state.

    Call inside ``transaction.atomic``. With ``not_older_than``, a fetch that started at or
    after that moment is reused instead of fetching again.
    """
    with object_lock(stripe_id):
        state = ObjectSync.objects.filter(stripe_id=stripe_id).first()
        if (
            not_older_than is not None
            and state is not None
            and state.snapshot is not None
            and state.fetch_started_at is not None
            and state.fetch_started_at >= not_older_than
        ):
            return Refreshed(
                obj=state.snapshot,
                mirror=mirror.row_for(state.snapshot),
                coalesced=True,
                deleted=state.deleted_at is not None,
            )

        started = db_now()
        try:
            fetched = stripe_api.retrieve(
                object_type=object_type,
                stripe_id=stripe_id,
                expand=sorted(EXPANSIONS.get(object_type, ())),
            )
            data = stripe_api.as_dict(fetched)
        except stripe_api.StripeNotFound:
            data = {"id": stripe_id, "object": object_type, "deleted": True}

        deleted = bool(data.get("deleted"))
        row = mirror.mark_deleted(data) if deleted else mirror.upsert(data)
        now = timezone.now()
        ObjectSync.objects.update_or_create(
            stripe_id=stripe_id,
            defaults={
                "object_type": object_type,
                "fetch_started_at": started,
                "synced_at": now,
                "snapshot": data,
                "deleted_at": ((state and state.deleted_at) or now) if deleted else None,
                "fetch_count": (state.fetch_count if state else 0) + 1,
            },
        )
        return Refreshed(obj=data, mirror=row, coalesced=False, deleted=deleted)


# --- Processing one event -------------------------------------------------------------------


def process(event_id: str) -> str:
    """Process one stored event exactly once; return its resulting status.

    Raises on failure (the caller records it and schedules a retry); the whole attempt,
    mirror writes and business effects included, is rolled back with it.
    """
    with transaction.atomic():
        event = InboundEvent.objects.select_for_update().get(pk=event_id)
        if event.is_final:
            return event.status
        started = timezone.now()
        if event.type not in HANDLERS:
            _finish(
                event, InboundEvent.Status.IGNORED, "no handler registered for this type", started
            )
            return event.status
        if not event.object_id:
            _finish(event, InboundEvent.Status.PROCESSED, "event has no object to fetch", started)
            return event.status

        refreshed = object_refresh(
            object_type=event.object_type,
            stripe_id=event.object_id,
            not_older_than=event.received_at,
        )
        handler = HANDLERS[event.type]
        notes = ["mirror reused (coalesced)" if refreshed.coalesced else "object fetched"]
        if refreshed.deleted:
            notes.append("object deleted in Stripe; marked deleted in the mirror")
        if handler is not None:
            context = EventContext(
                event=event,
                obj=refreshed.obj,
                mirror=refreshed.mirror,
                coalesced=refreshed.coalesced,
            )
            result = handler(context)
            if result:
                notes.append(result)
        event.attempts += 1
        _finish(event, InboundEvent.Status.PROCESSED, "; ".join(notes), started)
        return event.status


def _finish(event: InboundEvent, status: str, outcome: str, started: datetime) -> None:
    event.status = status
    event.outcome = outcome
    event.processed_at = timezone.now()
    event.last_attempt_at = started
    event.next_attempt_at = None
    event.save(
        update_fields=[
            "status",
            "outcome",
            "processed_at",
            "last_attempt_at",
            "next_attempt_at",
            "attempts",
        ]
    )


def failure_record(
    *, event_id: str, error: str, final: bool, next_attempt_at: datetime | None
) -> None:
    """Keep the traceback of a failed attempt; mark the event failed when retries are spent."""
    InboundEvent.objects.filter(pk=event_id).exclude(status__in=InboundEvent.FINAL).update(
        attempts=F("attempts") + 1,
        last_error=error,
        last_attempt_at=timezone.now(),
        next_attempt_at=None if final else next_attempt_at,
        status=InboundEvent.Status.FAILED if final else InboundEvent.Status.RETRYING,
    )
