"""The handler registry: which business handler runs for each event type, and which expansions
each object type is fetched with. Types nobody registered are stored and marked ignored; what
is registered is what webhook endpoints subscribe to (never ``*``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from billing import mirror, types
from billing.models import InboundEvent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventContext:
    """What a handler gets: the stored event, the latest object, and its mirror row."""

    event: InboundEvent
    obj: dict[str, Any]  # the object as Stripe has it now, with the registered expansions
    mirror: Any | None  # the dj-stripe row just upserted (None for types without a model)
    coalesced: bool  # True when an earlier fetch (started after this event arrived) served it
    # What the change altered, as it was before, for handlers registered with ``reads_event``:
    # a snapshot event's ``previous_attributes``, a thin event's ``changes.before``.
    previous_attributes: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[EventContext], str | None]

# Event type -> business handler (None: the event only refreshes the mirror).
HANDLERS: dict[str, Handler | None] = {}
# Stripe object type -> expansions to ask for whenever that object is fetched.
EXPANSIONS = mirror.EXPANSIONS
# Event types whose handler reads the event, not only the object (for a thin event, the full
# v2 event is fetched before it runs: one more request).
READS_EVENT: set[str] = set()


def object_type_for_event_type(event_type: str) -> str:
    return types.for_event(event_type)


def register(
    *event_types: str, expand: Iterable[str] = (), reads_event: bool = False
) -> Callable[[Handler], Handler]:
    """Register a business handler for event types, with the expansions it reads; with
    ``reads_event``, it reads ``EventContext.previous_attributes`` too.

    Handlers must be idempotent (state check under ``select_for_update``): the pipeline
    processes each event once, but the same business fact can arrive as several events.
    """

    def decorator(fn: Handler) -> Handler:
        for event_type in event_types:
            if HANDLERS.get(event_type) not in (None, fn):
                raise ValueError(f"{event_type} already has a handler: {HANDLERS[event_type]}")
            HANDLERS[event_type] = fn
            if reads_event:
                READS_EVENT.add(event_type)
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
