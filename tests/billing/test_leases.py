"""A claim past its lease is given back by the periodic requeue, in the database, every run,
whatever was queued for the event before (billing.webhooks.queue.claims_release)."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from billing.models import InboundEvent
from billing.webhooks import queue

LEASE = 120


@pytest.fixture(autouse=True)
def _lease(settings):
    settings.BILLING_EVENT_LEASE_SECONDS = LEASE
    settings.BILLING_EVENT_REQUEUE_AFTER_SECONDS = 60
    settings.BILLING_EVENT_MAX_ATTEMPTS = 3


def stored(n: int, **fields) -> InboundEvent:
    return InboundEvent.objects.create(
        id=f"evt_lease_{n}",
        type="customer.updated",
        created=datetime(2026, 11, 1, tzinfo=UTC),
        object_type="customer",
        object_id=f"cus_lease_{n}",
        payload={"id": f"evt_lease_{n}", "object": "event"},
        **fields,
    )


@pytest.mark.django_db
def test_a_claim_past_its_lease_is_given_back_at_the_next_run_though_a_task_was_queued_since(
    django_capture_on_commit_callbacks,
):
    now = timezone.now()
    claimed_at = now - timedelta(seconds=LEASE + 5)
    # Given a dead worker's claim, past its lease, whose takeover task was queued 10 s ago by
    # an earlier run and has not run (lost with a worker, or waiting behind a backlog)
    event = stored(
        1,
        status=InboundEvent.Status.PROCESSING,
        claimed_at=claimed_at,
        queued_at=now - timedelta(seconds=10),
    )
    # and a claim within its lease
    live = stored(2, status=InboundEvent.Status.PROCESSING, claimed_at=now, queued_at=now)

    # When the periodic requeue runs
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert queue.events_requeue() == 1

    # Then the claim is given back at once, in the database (no task has to run for that),
    # the lost attempt counted, and one task queued for the event
    event.refresh_from_db()
    assert (event.status, event.claimed_at, event.attempts) == ("retrying", None, 1)
    assert event.last_attempt_at == claimed_at
    assert event.last_error.startswith("lease expired")
    assert event.queued_at >= now
    assert len(queued) == 1
    # the live claim is left to its worker
    live.refresh_from_db()
    assert (live.status, live.claimed_at, live.attempts) == ("processing", now, 0)
    # and the next run finds nothing to do: the event's task was just queued
    with django_capture_on_commit_callbacks(execute=False) as again:
        assert queue.events_requeue() == 0
    assert again == []


@pytest.mark.django_db
def test_a_claim_lost_on_the_last_attempt_fails_the_event(django_capture_on_commit_callbacks):
    old = timezone.now() - timedelta(minutes=10)
    # Given an event whose worker died on its last attempt (it kills its worker each time)
    event = stored(1, status=InboundEvent.Status.PROCESSING, claimed_at=old, attempts=2)

    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert queue.events_requeue() == 0

    # Then it ends failed, for support to see, and is not queued again
    event.refresh_from_db()
    assert (event.status, event.claimed_at, event.attempts) == ("failed", None, 3)
    assert queued == []


@pytest.mark.django_db(transaction=True)
def test_a_claim_whose_row_another_session_holds_is_skipped_without_waiting():
    """A killed worker's session that was waiting for a lock keeps the event's row locked until
    it gets that lock: the requeue must not wait for it, nor stop giving back the others."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks held by another session: PostgreSQL")
    old = timezone.now() - timedelta(minutes=10)
    held = stored(1, status=InboundEvent.Status.PROCESSING, claimed_at=old)
    free = stored(2, status=InboundEvent.Status.PROCESSING, claimed_at=old)
    holding, done = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                InboundEvent.objects.select_for_update().get(pk=held.pk)
                holding.set()
                done.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        # When the requeue runs while that row is locked
        released = queue.claims_release(now=timezone.now())
        elapsed = time.monotonic() - started
    finally:
        done.set()
        thread.join(10)

    # Then it gives back the other claim at once and leaves the locked one for its next run
    assert released == [free.pk]
    assert elapsed < 2
    held.refresh_from_db()
    assert held.status == InboundEvent.Status.PROCESSING
    assert queue.claims_release(now=timezone.now()) == [held.pk]
