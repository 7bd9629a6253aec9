"""The webhooks' traffic counted by the hour (``billing.traffic``): readers get exact figures
from the counted hours plus the deliveries since, however often it is counted, with or
without the periodic task."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from billing import tasks
from billing.models import DeliveryCount, InboundEvent, WebhookDelivery
from billing.webhooks import retention, traffic

pytestmark = pytest.mark.django_db

ENDPOINT, OTHER = uuid.uuid4(), uuid.uuid4()


def delivered(event_id: str, *, hours_ago: float, endpoint=ENDPOINT, version="2026-08-26.dahlia"):
    at = timezone.now() - timedelta(hours=hours_ago)
    event, _ = InboundEvent.objects.get_or_create(
        id=event_id,
        defaults={"type": "customer.updated", "api_version": version, "created": at,
                  "received_at": at, "payload": {}},
    )  # fmt: skip
    WebhookDelivery.objects.create(event=event, endpoint_uuid=endpoint, received_at=at,
                                   outcome="accepted", status_code=200)  # fmt: skip


def test_counted_hours_and_the_deliveries_since_add_up_exactly():
    # events over three days, one delivered twice to the same endpoint (a retry), one to two
    for n in range(30):
        delivered(f"evt_{n}", hours_ago=n * 2.5)
    delivered("evt_3", hours_ago=7.5)  # a retry of the same event: counted once
    delivered("evt_4", hours_ago=10, endpoint=OTHER)
    delivered("evt_old", hours_ago=24 * 40, version="2025-02-24.acacia")
    since = timezone.now() - timedelta(days=30)

    first = traffic.events_delivered(since=since, by="endpoint_uuid")
    assert first == {ENDPOINT: 30, OTHER: 1}
    assert DeliveryCount.objects.exists()  # whole hours were counted on the way

    # counting again, or a reader asking again, changes nothing
    assert traffic.traffic_count() == 0
    assert traffic.events_delivered(since=since, by="endpoint_uuid") == first
    # a delivery in the current hour is read from the log, not lost
    delivered("evt_new", hours_ago=0)
    assert traffic.events_delivered(since=since, by="endpoint_uuid")[ENDPOINT] == 31
    by_version = traffic.events_delivered(since=since, by="api_version")
    assert by_version == {"2026-08-26.dahlia": 32}  # the 40-day-old one is outside


def test_pruning_counts_the_hours_it_is_about_to_drop():

    delivered("evt_1", hours_ago=24 * 40)
    retention.deliveries_prune(older_than=timedelta(days=30))
    assert not WebhookDelivery.objects.exists()
    assert not DeliveryCount.objects.filter(hour__lt=timezone.now() - timedelta(days=30)).exists()


def test_the_periodic_task_counts_the_hours_that_ended():
    """``billing.traffic_count`` as beat runs it (it once imported a module that had moved)."""
    delivered("evt_task", hours_ago=3)
    assert tasks.traffic_count.apply().get() >= 1
    assert DeliveryCount.objects.filter(endpoint_uuid=ENDPOINT).exists()
