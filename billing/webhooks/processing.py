"""Processing one stored event: claim it, re-fetch its object, write the mirror, run its handler.

Rules this module keeps (see DESIGN.md):
- act on the latest object, re-fetched from Stripe with the expansions handlers need, never on
  the event's snapshot;
- no transaction or lock is held while Stripe is called: fetch first, then write briefly;
- the mirror never goes back to an older state: every write goes through ``billing.mirror``'s
  ordering guard;
- a fetch that started after an event was received already reflects that event, so a burst of
  events for one object costs one fetch, not one each (coalescing);
- an event's effects happen once: a run claims the event with a conditional UPDATE (a lease),
  and the claim is checked again, row locked, in the transaction that applies the effects;
  handlers are idempotent themselves as a second layer;
- a change's effects happen once whatever payload style brings it: a thin event and the
  snapshot event of the same change (``twins``) apply it once, the other is a ``duplicate``;
  a thin event is otherwise processed as a snapshot event is (its related object re-fetched),
  and its full v2 event is fetched only when a handler reads the event (``thin``);
- retries follow the event's own ``attempts`` and ``next_attempt_at``, never the task's: a
  run for an event that is not due does nothing, so requeuing cannot start a second chain.
"""

from __future__ import annotations

import logging
import traceback
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing import mirror, types
from billing.models import InboundEvent, PayloadStyle
from billing.webhooks import queue, thin, twins
from billing.webhooks.registry import HANDLERS, READS_EVENT, EventContext

logger = logging.getLogger(__name__)


def retry_delay(attempt: int) -> float:
    """Exponential backoff after the ``attempt``-th failure: base, 2x base ... capped at 1 h."""
    return min(settings.BILLING_EVENT_RETRY_BASE_SECONDS * 2 ** (attempt - 1), 3600.0)


def process(event_id: str) -> str:
    """Process one stored event exactly once; return what this run did.

    Three steps, so no transaction or lock is held while Stripe is called:
    1. claim: one conditional UPDATE makes the event ``processing`` with this run's claim
       time, only if it is due (pending, or retrying with its retry time passed), or once its
       previous claim, older than the lease (that worker died), is given back
       (``queue.claims_release``, as the periodic requeue does). Any other run of the task
       for this event (a duplicate, a requeue, a retry not yet due) changes nothing and
       returns at once: one chain of attempts per event, whatever is queued;
    2. fetch the object from Stripe with the registered expansions, outside any transaction,
       unless a fetch that started after this event was received already wrote the mirror;
    3. one short transaction: the event row locked and the claim checked again (a claim
       taken over after the lease expired loses), the mirror written through the ordering
       guard (``billing.mirror``), the handler run, the outcome recorded.
    A failure keeps its traceback on the event, counts an attempt and sets the next attempt
    time from the event's own ``attempts`` (``failed`` once BILLING_EVENT_MAX_ATTEMPTS are
    spent); the retry is queued for then. The failed attempt's writes are rolled back.
    """
    claimed_at = _claim(event_id)
    if claimed_at is None:
        return "skipped: not due, already claimed or final"
    try:
        return _run(event_id, claimed_at)
    except Exception as exc:
        return _failure_record(event_id=event_id, claimed_at=claimed_at, exc=exc)


def _claim(event_id: str) -> datetime | None:
    """Take the event for this run (see ``process``); None when it is not this run's."""
    now = timezone.now()
    queryset = InboundEvent.objects.filter(pk=event_id)
    claim = {"status": InboundEvent.Status.PROCESSING, "claimed_at": now}
    if queryset.filter(queue.due(now)).update(**claim):
        return now
    # A claim past its lease: the worker that held it died mid-attempt (kill -9, OOM). It is
    # given back as the periodic requeue gives it back (the lost attempt counts, so an event
    # that kills its worker each time still ends "failed"), then claimed like any due event.
    if not queue.claims_release(now=now, event_id=event_id):
        return None
    if not queryset.filter(queue.due(now)).update(**claim):
        return None  # that was its last attempt: it is failed now
    logger.warning("event %s: previous claim past its lease; taking it over", event_id)
    return now


def _run(event_id: str, claimed_at: datetime) -> str:
    event = InboundEvent.objects.get(pk=event_id)
    started = timezone.now()
    if early := thin.early_outcome(event):  # a ping, an object this shop does not mirror
        return _finish_claimed(event, claimed_at, *early)
    if event.type not in HANDLERS:
        return _finish_claimed(
            event, claimed_at, InboundEvent.Status.IGNORED, "nothing to do for this kind of event"
        )
    if not event.object_id:
        return _finish_claimed(
            event,
            claimed_at,
            InboundEvent.Status.PROCESSED,
            "the event names no object; nothing to do",
        )
    if mismatch := _object_mismatch(event):
        # Signed, so not forged by a stranger; but no handler may act on an object other than
        # the kind its event names (a "session completed" about a payment intent).
        return _finish_claimed(event, claimed_at, InboundEvent.Status.IGNORED, mismatch)
    # The same change may have come as a snapshot event and as a thin event (both receivers
    # live during an upgrade): the first applies it, the other has nothing to do.
    twins.pair(event)
    if twin := twins.applied_twin(event):
        status, outcome = InboundEvent.Status.DUPLICATE, twins.duplicate_outcome(twin)
        return _finish_claimed(event, claimed_at, status, outcome)
    # A thin event carries no changes: fetched (once) for a handler that reads them.
    full_missing = (
        event.payload_style == PayloadStyle.THIN
        and event.type in READS_EVENT
        and thin.full_event(event) is None
    )

    reused = mirror.coalesced(
        object_type=event.object_type,
        stripe_id=event.object_id,
        not_older_than=event.received_at,
    )
    fetched = (
        None
        if reused is not None
        else mirror.object_fetch(object_type=event.object_type, stripe_id=event.object_id)
    )

    with transaction.atomic():
        twins.change_lock(event)
        event = InboundEvent.objects.select_for_update().get(pk=event_id)
        if not _holds(event, claimed_at):
            return "skipped: the claim was taken over after its lease expired"
        if twin := twins.applied_twin(event):  # it applied the change while we fetched
            event.attempts += 1
            _finish(event, InboundEvent.Status.DUPLICATE, twins.duplicate_outcome(twin), started)
            return event.status
        synced = reused or mirror.object_write(
            data=fetched.data, started_at=fetched.started_at, expand=fetched.expand
        )
        handler = HANDLERS[event.type]
        # In words support reads on the event's page (the flags themselves are on the row).
        notes = [
            "used the copy fetched from Stripe moments ago for another event"
            if synced.coalesced
            else "fetched from Stripe"
        ]
        if fetched is not None and not synced.written:
            notes.append("a newer copy was already saved; kept that one")
        if synced.deleted:
            notes.append("deleted in Stripe; marked deleted here")
        if handler is not None:
            context = EventContext(
                event=event,
                obj=synced.obj,
                mirror=synced.mirror,
                coalesced=synced.coalesced,
                previous_attributes=thin.previous_attributes(event),
            )
            result = handler(context)
            if result:
                notes.append(result)
        if full_missing:
            notes.append("its full event is gone from Stripe: the handler saw no changes")
        event.attempts += 1
        _finish(event, InboundEvent.Status.PROCESSED, "; ".join(notes), started)
        return event.status


def _object_mismatch(event: InboundEvent) -> str:
    """Why the event's object is not of the type its event type names ("" when it is)."""
    expected = types.for_event(event.type)
    found = {event.object_type, types.for_id(event.object_id) or event.object_type}
    if found == {expected}:
        return ""
    named = ", ".join(sorted(t for t in found if t)) or "unknown"
    return f"refused: its object is a {named}, not the {expected} a {event.type} event is about"


def _holds(event: InboundEvent, claimed_at: datetime) -> bool:
    return event.status == InboundEvent.Status.PROCESSING and event.claimed_at == claimed_at


def _finish_claimed(event: InboundEvent, claimed_at: datetime, status: str, outcome: str) -> str:
    with transaction.atomic():
        locked = InboundEvent.objects.select_for_update().get(pk=event.pk)
        if not _holds(locked, claimed_at):
            return "skipped: the claim was taken over after its lease expired"
        _finish(locked, status, outcome, timezone.now())
        return locked.status


def _finish(event: InboundEvent, status: str, outcome: str, started: datetime) -> None:
    event.status = status
    event.outcome = outcome
    event.processed_at = timezone.now()
    event.last_attempt_at = started
    event.next_attempt_at = None
    event.claimed_at = None
    event.save(
        update_fields=[
            "status",
            "outcome",
            "processed_at",
            "last_attempt_at",
            "next_attempt_at",
            "attempts",
            "claimed_at",
        ]
    )


def _failure_record(*, event_id: str, claimed_at: datetime, exc: Exception) -> str:
    """Count the failed attempt on the event, keep its traceback, and queue the retry for
    when it is due; ``failed`` once the attempts are spent. Only the claim's holder records."""

    error = traceback.format_exc()
    with transaction.atomic():
        event = (
            InboundEvent.objects.select_for_update()
            .only("status", "claimed_at", "attempts")
            .get(pk=event_id)
        )
        if not _holds(event, claimed_at):
            return "skipped: the claim was taken over after its lease expired"
        attempt = event.attempts + 1
        final = attempt >= settings.BILLING_EVENT_MAX_ATTEMPTS
        delay = retry_delay(attempt)
        next_at = None if final else timezone.now() + timedelta(seconds=delay)
        InboundEvent.objects.filter(pk=event_id).update(
            attempts=attempt,
            last_error=error,
            last_attempt_at=claimed_at,
            next_attempt_at=next_at,
            queued_at=next_at,
            claimed_at=None,
            status=InboundEvent.Status.FAILED if final else InboundEvent.Status.RETRYING,
        )
        if final:
            logger.error("event %s failed after %s attempts: %s", event_id, attempt, exc)
            return InboundEvent.Status.FAILED
        logger.warning(
            "event %s attempt %s failed (%s); retry in %.1fs", event_id, attempt, exc, delay
        )
        queue.event_enqueue(event_id=event_id, countdown=delay)
    return InboundEvent.Status.RETRYING
