"""Event processing: the ordering guard, the mirror upsert and the handler registry.

Rules this module keeps (see DESIGN.md):
- act on the latest object, re-fetched from Stripe with the expansions handlers need, never on
  the event's snapshot;
- no transaction or lock is held while Stripe is called: fetch first, then write briefly;
- the mirror never goes back to an older state: every write goes through ``billing.sync``'s
  ordering guard;
- a fetch that started after an event was received already reflects that event, so a burst of
  events for one object costs one fetch, not one each (coalescing);
- an event's effects happen once: the event row is locked and its status checked in the
  transaction that applies them; handlers are idempotent themselves as a second layer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing import sync
from billing.models import InboundEvent

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
EXPANSIONS = sync.EXPANSIONS

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


# --- Processing one event -------------------------------------------------------------------


def process(event_id: str) -> str:
    """Process one stored event exactly once; return its resulting status.

    Three steps, so no transaction or lock is held while Stripe is called:
    1. claim: a short look at the event (skip it if final; types nobody handles and events
       without an object finish here);
    2. fetch the object from Stripe with the registered expansions, outside any transaction,
       unless a fetch that started after this event was received already wrote the mirror;
    3. one short transaction: the event row locked and checked again (a concurrent copy of
       this task may have finished it), the mirror written through the ordering guard
       (``billing.sync``), the handler run, the outcome recorded.
    Raises on failure (the caller records it and schedules a retry); the mirror writes and
    business effects of the attempt are rolled back with it.
    """
    event = _claim(event_id)
    if event.is_final:
        return event.status

    reused = sync.coalesced(
        object_type=event.object_type,
        stripe_id=event.object_id,
        not_older_than=event.received_at,
    )
    fetched = (
        None
        if reused is not None
        else sync.object_fetch(object_type=event.object_type, stripe_id=event.object_id)
    )

    with transaction.atomic():
        event = InboundEvent.objects.select_for_update().get(pk=event_id)
        if event.is_final:
            return event.status
        started = timezone.now()
        synced = reused or sync.object_write(
            data=fetched.data, started_at=fetched.started_at, expand=fetched.expand
        )
        handler = HANDLERS[event.type]
        notes = ["mirror reused (coalesced)" if synced.coalesced else "object fetched"]
        if fetched is not None and not synced.written:
            notes.append("mirror already held a later fetch; kept it")
        if synced.deleted:
            notes.append("object deleted in Stripe; marked deleted in the mirror")
        if handler is not None:
            context = EventContext(
                event=event, obj=synced.obj, mirror=synced.mirror, coalesced=synced.coalesced
            )
            result = handler(context)
            if result:
                notes.append(result)
        event.attempts += 1
        _finish(event, InboundEvent.Status.PROCESSED, "; ".join(notes), started)
        return event.status


def _claim(event_id: str) -> InboundEvent:
    """Finish at once what needs no Stripe object; otherwise hand the event on to fetch."""
    with transaction.atomic():
        event = InboundEvent.objects.select_for_update().get(pk=event_id)
        if event.is_final:
            return event
        started = timezone.now()
        if event.type not in HANDLERS:
            _finish(
                event, InboundEvent.Status.IGNORED, "no handler registered for this type", started
            )
        elif not event.object_id:
            _finish(event, InboundEvent.Status.PROCESSED, "event has no object to fetch", started)
        return event


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
