"""A worker killed with ``kill -9`` (its main process, as an operator or the OOM killer does), the
one running beat included, loses no event and leaves none claimed past its lease plus one
requeue interval; the worker started again runs the one beat, resuming its schedule.

Real processes: HTTP intake on the live server, Redis, a Celery worker with its beat, fakestripe.
PostgreSQL: the kill is timed by locks, so the worker is known to be where it is killed. Runs
when CELERY_BROKER_URL is set.
"""

import re
import threading
import time
from contextlib import contextmanager

import pytest
from django.db import connection, transaction
from djstripe.models import Customer

from billing.mirror import locks
from billing.models import InboundEvent
from tests.billing.test_pipeline import customers_created
from tests.conftest import events_final, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

LEASE = 8
INTERVAL = 2
LEASED = {
    "BILLING_EVENT_LEASE_SECONDS": str(LEASE),
    "BILLING_REQUEUE_INTERVAL_SECONDS": str(INTERVAL),
}
BEAT_SENDS = re.compile(r"celery\.beat (\d+) Scheduler: Sending due task billing\.requeue_events")


@contextmanager
def object_locked(stripe_id: str):
    """Another writer of the mirror holding the object's lock (``billing.mirror.locks``) in a
    session of its own, until the block ends."""
    holding, done = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                locks.take([stripe_id])
                holding.set()
                done.wait(60)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(10)
    try:
        yield
    finally:
        done.set()
        thread.join(10)


def sessions_waiting_for_an_object_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
        )
        return cursor.fetchone()[0]


def claimed(event: dict) -> InboundEvent | None:
    return InboundEvent.objects.filter(
        pk=event["id"], status=InboundEvent.Status.PROCESSING
    ).first()


def test_worker_with_beat_killed_mid_event_loses_nothing_and_its_claims_end_with_the_lease(
    stripe_emulator, intake, celery_workers, tmp_path
):
    if connection.vendor != "postgresql":
        pytest.skip("the kill is timed by a lock another session holds: PostgreSQL")
    writing, fetching, *later = customers_created(4, "killed")
    schedule, log = tmp_path / "beat-schedule", tmp_path / "worker.log"
    # Given a worker running beat, two pool processes: one inside its last transaction (the
    # event claimed, its row locked, waiting for the object's lock another writer holds) ...
    worker = celery_workers.start(beat=True, schedule=schedule, log=log, **LEASED)
    with object_locked(writing["data"]["object"]["id"]):
        assert intake(writing) == 200
        wait_for(lambda: claimed(writing) and sessions_waiting_for_an_object_lock(), timeout=15)
        # ... the other mid-fetch from Stripe, which answers in 30 s
        stripe_emulator.set_faults(latency=30.0)
        assert intake(fetching) == 200
        wait_for(lambda: claimed(fetching), timeout=15)
        time.sleep(0.5)

        # When its main process is killed (kill -9), then the other writer finishes
        celery_workers.kill_main(worker)
        killed_at = time.monotonic()
        wait_for(lambda: not celery_workers.survivors(worker), timeout=5)
    stripe_emulator.clear_faults()
    claims = {e["id"]: claimed(e).claimed_at for e in (writing, fetching)}
    # and two more events arrive while no worker runs
    assert [intake(event) for event in later] == [200, 200]
    beat_log_from = len(log.read_text())
    # and the worker is started again, with its beat and its schedule file
    celery_workers.start(beat=True, schedule=schedule, log=log, **LEASED)

    # Then every event is processed, each once ...
    wait_for(events_final(4), timeout=LEASE + 4 * INTERVAL + 15)
    print(f"all processed {time.monotonic() - killed_at:.1f} s after the kill")
    for event in (writing, fetching, *later):
        stored = InboundEvent.objects.get(pk=event["id"])
        assert stored.status == InboundEvent.Status.PROCESSED
        assert Customer.objects.filter(id=event["data"]["object"]["id"]).count() == 1
        if event["id"] not in claims:
            assert stored.attempts == 1
            continue
        # ... a killed claim within its lease plus one requeue interval (and the time a
        # requeue and an attempt take), its lost attempt counted
        took = (stored.processed_at - claims[event["id"]]).total_seconds()
        assert took <= LEASE + INTERVAL + 3, f"{event['id']} processed {took:.1f} s after its claim"
        assert stored.attempts == 2
        assert stored.last_error.startswith("lease expired")
    # and one beat sent the requeues after the restart: the killed worker's beat died with it
    senders = set(BEAT_SENDS.findall(log.read_text()[beat_log_from:]))
    assert len(senders) == 1, f"requeues sent by beats {senders}"
