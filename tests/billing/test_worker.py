"""Reliability with the real stack: live server intake, Redis broker, real worker processes.

Run when CELERY_BROKER_URL is set (.ci/run sets it; on PostgreSQL and on SQLite).
"""

import random
import threading

import pytest
from djstripe.models import Customer

from billing import stripe_api
from billing.models import InboundEvent, ObjectSync, WebhookDelivery
from tests.billing.test_processing import (
    assert_mirror_matches_emulator,
    emitted,
    subscription_scenario,
)
from tests.conftest import deliver_concurrently, events_final, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_twenty_concurrent_deliveries_of_one_event_take_effect_once(
    stripe_emulator, intake, celery_worker_process
):
    customer = stripe_api.create(object_type="customer", params={"email": "twenty@example.com"})
    (created,) = emitted(types=["customer.created"], object_id=customer.id)
    stripe_emulator.reset_stats()

    statuses = deliver_concurrently(intake, created)

    assert statuses == [200] * 20
    wait_for(events_final(1))
    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.PROCESSED
    assert event.attempts == 1
    assert WebhookDelivery.objects.filter(outcome="accepted").count() == 1
    assert WebhookDelivery.objects.filter(outcome="duplicate").count() == 19
    # one fetch of the object, one mirror row
    assert ObjectSync.objects.get(stripe_id=customer.id).fetch_count == 1
    assert stripe_emulator.stats()["by_route"]["GET /v1/customers/{id}"] == 1
    assert Customer.objects.filter(id=customer.id).count() == 1


def test_shuffled_concurrent_subscription_events_end_at_the_latest_state(
    stripe_emulator, intake, celery_workers
):
    subscription_id, invoice_id, sequence = subscription_scenario()
    celery_workers.start(concurrency=2)
    celery_workers.start(concurrency=2)
    shuffled = random.Random(7).sample(sequence, len(sequence))

    threads = [threading.Thread(target=intake, args=(event,)) for event in shuffled]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    wait_for(events_final(len(sequence)))
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert_mirror_matches_emulator(subscription_id, invoice_id)


def test_rate_limits_and_server_errors_during_processing_are_retried(
    stripe_emulator, intake, celery_workers, settings
):
    settings.BILLING_EVENT_RETRY_BASE_SECONDS = 0.5
    customer = stripe_api.create(object_type="customer", params={"email": "flaky@example.com"})
    (created,) = emitted(types=["customer.created"], object_id=customer.id)
    celery_workers.start()
    stripe_emulator.reset_stats()
    stripe_emulator.set_faults(rate_limit=1, error_rate=1.0)
    threading.Timer(2.0, lambda: stripe_emulator.set_faults(error_rate=0.0)).start()

    assert intake(created) == 200

    wait_for(events_final(1), timeout=60)
    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.PROCESSED, event.last_error
    by_status = stripe_emulator.stats()["by_status"]
    assert by_status.get("500", 0) > 0
    assert by_status.get("429", 0) > 0
    assert Customer.objects.filter(id=customer.id).exists()
