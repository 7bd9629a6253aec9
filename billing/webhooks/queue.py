"""The events' queue: storing an event for processing, publishing its task, requeuing what no
task works on, giving back claims past their lease, and putting a failed event back. The rules
for an event that is due and for a claim past its lease are here, once (``due``,
``claim_expired``, ``claims_release``)."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from billing.models import (
    InboundEvent,
)
from config import celery

logger = logging.getLogger(__name__)


# A duplicate delivery of an event still waiting to be processed queues it again, unless a
# task was queued for it this recently (concurrent copies of one delivery queue one task).
DUPLICATE_REQUEUE_AFTER = timedelta(seconds=5)


def duplicate_requeue(*, event_id: str) -> bool:
    """A copy of an event still waiting (not claimed, its retry due) queues it again: its
    first task may have been lost. One conditional UPDATE; True when a task should go."""
    now = timezone.now()
    return bool(
        InboundEvent.objects.filter(pk=event_id)
        .filter(due(now))
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lte=now - DUPLICATE_REQUEUE_AFTER))
        .update(queued_at=now)
    )


def due(now: datetime) -> Q:
    """Waiting for a worker and not in backoff."""
    return Q(status__in=(InboundEvent.Status.PENDING, InboundEvent.Status.RETRYING)) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


def claim_expired(now: datetime) -> Q:
    """Claimed by a worker longer than the lease (``BILLING_EVENT_LEASE_SECONDS``): it died."""
    lease = timedelta(seconds=settings.BILLING_EVENT_LEASE_SECONDS)
    return Q(status=InboundEvent.Status.PROCESSING, claimed_at__lt=now - lease)


def claims_release(*, now: datetime, event_id: str | None = None, limit: int = 1000) -> list[str]:
    """Give back the claims past their lease (``claim_expired``): each event is due again at
    once, marked not queued, its lost attempt counted (``failed`` once BILLING_EVENT_MAX_ATTEMPTS
    are spent). Returns the ids given back.

    This is what bounds a dead worker's claim to its lease plus one periodic requeue, whatever
    step the worker died at and whatever became of the tasks queued for the event (one waiting
    behind a backlog, or lost with another worker): the row itself stops being claimed, in the
    database, when the requeue runs. A late holder finds its claim gone and changes nothing.
    Rows another transaction has locked are skipped until the next run (SKIP LOCKED): their
    holder is mid-write, or it is the session of a killed worker still waiting for a lock, which
    holds the row until it gets that lock and finds its client gone; waiting for it here would
    stall every other release.
    """
    queryset = InboundEvent.objects.filter(claim_expired(now))
    if event_id is not None:
        queryset = queryset.filter(pk=event_id)
    final = settings.BILLING_EVENT_MAX_ATTEMPTS - 1
    with transaction.atomic():
        ids = list(
            queryset.select_for_update(skip_locked=True)
            .order_by("claimed_at")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            InboundEvent.objects.filter(pk__in=ids).filter(claim_expired(now)).update(
                status=Case(
                    When(attempts__gte=final, then=Value(InboundEvent.Status.FAILED)),
                    default=Value(InboundEvent.Status.RETRYING),
                ),
                attempts=F("attempts") + 1,
                last_attempt_at=F("claimed_at"),
                last_error=(
                    f"lease expired: the worker that claimed this event did not finish within "
                    f"{settings.BILLING_EVENT_LEASE_SECONDS:g} s (killed?); its claim was given "
                    f"back at {now:%H:%M:%S} UTC"
                ),
                claimed_at=None,
                next_attempt_at=None,
                queued_at=None,
            )
    return ids


def event_enqueue(*, event_id: str, countdown: float | None = None) -> None:
    """Publish ``billing.process_event`` once the current transaction commits.

    A broker that is down does not fail the caller (the event is stored; webhook intake
    still answers 200): the failure is logged, the event marked not queued, and the periodic
    requeue (``events_requeue``) sends it when the broker is back. The publish attempt is
    bounded (CELERY_TASK_PUBLISH_RETRY_POLICY, broker connect timeout) so a request is not
    held for long. Without a broker (unit tests) the task runs in process, waiting out
    ``countdown`` first as a worker would.
    """
    transaction.on_commit(lambda: _publish(event_id=event_id, countdown=countdown))


def _publish(*, event_id: str, countdown: float | None) -> None:
    process_event = celery.task("billing.process_event")
    try:
        if countdown and process_event.app.conf.task_always_eager:
            time.sleep(countdown)
        process_event.apply_async((event_id,), countdown=countdown)
    except Exception as exc:  # any broker failure: the stored event must not be lost or 500
        logger.warning(
            "could not queue event %s (%s: %s); the periodic requeue will send it",
            event_id,
            type(exc).__name__,
            exc,
        )
        InboundEvent.objects.filter(pk=event_id).update(queued_at=None)


def events_requeue(
    *,
    since: datetime | None = None,
    types: list[str] | None = None,
    limit: int = 1000,
) -> int:
    """Queue the events no task is working on: the periodic ``billing.requeue_events``
    (Celery beat) and ``stripe_process_events --pending``. Returns how many were queued.

    First every claim past its lease (``BILLING_EVENT_LEASE_SECONDS``; the worker died) is
    given back (``claims_release``), every run, whatever was queued for it before. Then an
    event is queued when it is due (pending, or retrying with its retry time passed) and no
    task was queued for it within ``BILLING_EVENT_REQUEUE_AFTER_SECONDS`` (or its publish
    failed, or its claim was just given back). An event waiting for its retry is left alone,
    and a queued task that finds its event claimed or not due does nothing, so one event
    never has two attempts running, however often it is queued.
    """
    now = timezone.now()
    for event_id in claims_release(now=now, limit=limit):
        logger.warning(
            "event %s: claim past its lease given back (its worker died?); taking it over",
            event_id,
        )
    after = timedelta(seconds=settings.BILLING_EVENT_REQUEUE_AFTER_SECONDS)
    not_queued_lately = Q(queued_at__isnull=True) | Q(queued_at__lte=now - after)
    queryset = InboundEvent.objects.filter(due(now) & not_queued_lately)
    if since is not None:
        queryset = queryset.filter(created__gte=since)
    if types:
        queryset = queryset.filter(type__in=types)
    ids = list(queryset.order_by("received_at").values_list("pk", flat=True)[:limit])
    if not ids:
        return 0
    InboundEvent.objects.filter(pk__in=ids).update(queued_at=now)
    for event_id in ids:
        event_enqueue(event_id=event_id)
    logger.info("requeued %s event(s) no task was working on", len(ids))
    return len(ids)


# --- Reprocessing and retention -------------------------------------------------------------


def event_reprocess(*, event: InboundEvent) -> InboundEvent:
    """Put a failed event back in the queue with a fresh retry budget.

    A processed or ignored event is left alone (its effects happened already), and so is an
    event a worker is processing or one waiting for its retry: its chain of attempts goes on,
    and a second chain is never started. A pending event is queued again (its task may have
    been lost); the claim makes any extra task a no-op.
    """
    with transaction.atomic():
        event = InboundEvent.objects.select_for_update().get(pk=event.pk)
        if event.status == InboundEvent.Status.FAILED:
            event.status = InboundEvent.Status.PENDING
            event.attempts = 0
            event.next_attempt_at = None
            event.claimed_at = None
            event.queued_at = timezone.now()
            event.save(
                update_fields=["status", "attempts", "next_attempt_at", "claimed_at", "queued_at"]
            )
            event_enqueue(event_id=event.id)
        elif event.status == InboundEvent.Status.PENDING:
            event.queued_at = timezone.now()
            event.save(update_fields=["queued_at"])
            event_enqueue(event_id=event.id)
    return event


def events_reprocess(
    *,
    statuses: tuple[str, ...] = (InboundEvent.Status.FAILED,),
    since: datetime | None = None,
    types: list[str] | None = None,
) -> int:
    """Requeue every event in ``statuses`` matching the filters; return how many."""
    queryset = InboundEvent.objects.filter(status__in=statuses)
    if since is not None:
        queryset = queryset.filter(created__gte=since)
    if types:
        queryset = queryset.filter(type__in=types)
    count = 0
    for event in queryset.order_by("created").iterator():
        event_reprocess(event=event)
        count += 1
    return count
