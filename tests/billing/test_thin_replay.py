"""Replay from the v2 events list for a deployment on thin events: `stripe_replay_events` and
the console's "Fetch missed events" read `/v2/core/events`, store the missed thin events as a
delivery would have (the notification, with the full event the list brought), and process
them; a second run stores nothing."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.admin.utils import quote
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from djstripe.models import Customer

from billing import stripe_api
from billing.models import InboundEvent, WebhookDelivery
from billing.webhooks.destinations import event_destination_create
from tests.billing.thin_support import capture_fixture, deliver, route_calls  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def replay_command(*args: str) -> str:
    out = StringIO()
    call_command("stripe_replay_events", *args, stdout=out)
    return out.getvalue()


def test_thin_replay_reads_the_v2_events_list_and_processes_only_missed_events(
    client, stripe_emulator, capture, settings
):
    # Given a deployment on thin events, five customer changes, two of which reached it
    settings.STRIPE_EVENT_PAYLOAD = "thin"
    event_destination_create(base_url=capture.base_url)
    first = stripe_api.create(object_type="customer", params={"email": "a@example.com"})
    stripe_api.update(object_type="customer", stripe_id=first.id, params={"name": "A"})
    second = stripe_api.create(object_type="customer", params={"email": "b@example.com"})
    stripe_api.update(object_type="customer", stripe_id=second.id, params={"name": "B"})
    stripe_api.update(object_type="customer", stripe_id=second.id, params={"name": "B2"})
    delivered = capture.wait_for(
        event_type="customer.created", thin=True, object_id=first.id
    ) + capture.wait_for(event_type="customer.updated", thin=True, object_id=first.id)
    for request in delivered:
        assert deliver(client, request).status_code == 200
    assert InboundEvent.objects.count() == 2
    stripe_emulator.reset_stats()
    since = (timezone.now() - timedelta(hours=1)).isoformat()

    # When the missed events are replayed
    output = replay_command("--since", since)

    # Then the three missing thin events are stored and processed, read from the v2 list
    assert "3 never received" in output and "2 already received" in output, output
    assert route_calls(stripe_emulator, "GET /v2/core/events") >= 1
    assert route_calls(stripe_emulator, "GET /v1/events") == 0
    replayed = InboundEvent.objects.exclude(id__in=[r["payload"]["id"] for r in delivered])
    assert {e.object_id for e in replayed} == {second.id}
    assert {e.payload_style for e in replayed} == {"thin"}
    assert set(replayed.values_list("status", flat=True)) == {InboundEvent.Status.PROCESSED}
    for event in replayed:
        # stored as a delivery would have brought it, the full event beside it
        assert event.payload["object"] == "v2.core.event" and "changes" not in event.payload
        assert event.fetched_event["id"] == event.id
    assert Customer.objects.get(id=second.id).stripe_data["name"] == "B2"
    assert WebhookDelivery.objects.filter(event__in=replayed).count() == 0

    # And a second run changes nothing
    processed_at = dict(InboundEvent.objects.values_list("id", "processed_at"))
    output = replay_command("--since", since)
    assert "0 never received" in output and "5 already received" in output
    assert dict(InboundEvent.objects.values_list("id", "processed_at")) == processed_at


def test_the_consoles_fetch_missed_events_reads_the_v2_list_on_thin_events(
    admin_client, stripe_emulator, capture, settings
):
    # Given a deployment on thin events whose destination got nothing (its URL is down)
    settings.STRIPE_EVENT_PAYLOAD = "thin"
    event_destination_create(base_url="http://127.0.0.1:9")
    customer = stripe_api.create(object_type="customer", params={"email": "c@example.com"})
    stripe_api.update(object_type="customer", stripe_id=customer.id, params={"name": "C"})
    call_command("stripe_backfill", "--types", "customer", stdout=StringIO())
    assert InboundEvent.objects.count() == 0
    stripe_emulator.reset_stats()

    # When support fetches the customer's missed events from its page
    page = reverse("admin:djstripe_customer_change", args=[quote(customer.id)])
    html = admin_client.get(page).content.decode()
    assert 'id="fetch-missed-events"' in html
    action = html.split('id="event-history"', 1)[1].split('action="', 1)[1].split('"', 1)[0]
    answer = admin_client.post(action, follow=True)

    # Then its two thin events are stored from the v2 list (filtered by object) and processed
    assert answer.status_code == 200
    assert route_calls(stripe_emulator, "GET /v2/core/events") >= 1
    events = InboundEvent.objects.filter(object_id=customer.id)
    assert sorted(events.values_list("type", flat=True)) == ["customer.created", "customer.updated"]
    assert {(e.payload_style, e.status) for e in events} == {("thin", "processed")}
