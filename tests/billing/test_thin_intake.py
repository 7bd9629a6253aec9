"""Thin events through the real intake view: what the emulator's thin destination sends,
verified with the destination's secret, stored once, processed by re-fetching the related
object; refused exactly as snapshot deliveries are when forged, stale or malformed."""

from __future__ import annotations

import time

import pytest
from djstripe.models import Customer

from billing import stripe_api
from billing.models import (
    EventDestination,
    InboundEvent,
    ObjectSync,
    WebhookDelivery,
    WebhookRejectCount,
)
from billing.webhooks import registry
from billing.webhooks.destinations import event_destination_create
from tests.billing.thin_support import capture_fixture, deliver, route_calls, signed  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

GET_CUSTOMER = "GET /v1/customers/{id}"
GET_V2_EVENT = "GET /v2/core/events/{evt_id}"


@pytest.fixture
def destination(stripe_emulator, capture) -> EventDestination:
    """This deployment on thin events only: one destination, no snapshot endpoint."""
    return event_destination_create(base_url=capture.base_url)


def thin_customer_created(stripe_emulator, capture, email="ada@example.com") -> dict:
    customer = stripe_api.create(object_type="customer", params={"email": email})
    (request,) = capture.wait_for(event_type="customer.created", thin=True, object_id=customer.id)
    return request


def test_a_thin_delivery_is_stored_once_and_fetches_its_object(
    client,
    stripe_emulator,
    capture,
    destination,
):
    # Given the destination's thin notification of a new customer, as the emulator sent it
    request = thin_customer_created(stripe_emulator, capture)
    notification = request["payload"]
    assert set(notification) >= {"id", "object", "type", "created", "related_object"}
    assert "data" not in notification  # thin: no snapshot
    stripe_emulator.reset_stats()

    # When it arrives twice
    first = deliver(client, request)
    again = deliver(client, request)

    # Then it is acknowledged both times, stored once with the notification as received
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == {"received": True, "duplicate": True}
    event = InboundEvent.objects.get()
    assert (event.id, event.type, event.payload_style) == (
        notification["id"],
        "customer.created",
        "thin",
    )
    assert event.object_id == notification["related_object"]["id"]
    assert event.api_version == ""  # unversioned
    assert event.payload == notification
    assert WebhookDelivery.objects.filter(endpoint_uuid=destination.uuid).count() == 2
    # and processed by fetching the customer at the pinned version; the full event was not
    # needed (no handler reads it, no snapshot twin can exist)
    assert event.status == "processed"
    assert Customer.objects.filter(id=event.object_id).exists()
    assert route_calls(stripe_emulator, GET_CUSTOMER) == 1
    assert route_calls(stripe_emulator, GET_V2_EVENT) == 0
    assert event.fetched_event is None


@pytest.mark.parametrize(
    ("change", "code", "fragment"),
    [
        ("forged", "bad_signature", "signature"),
        ("tampered", "bad_signature", "signature"),
        ("stale", "stale_timestamp", "tolerance"),
        ("future", "future_timestamp", "future"),
        ("unsigned", "missing_signature", "missing"),
        ("malformed", "malformed_json", "malformed JSON"),
        ("no related url", "not_an_event", "related_object.url"),
        ("unix created", "not_an_event", "RFC 3339"),
        ("odd type", "not_an_event", "not a thin event type"),
        ("not an event id", "not_an_event", "not an event id"),
    ],
)
def test_forged_stale_and_malformed_thin_deliveries_are_refused_as_snapshots_are(
    client,
    stripe_emulator,
    capture,
    destination,
    change,
    code,
    fragment,
):
    request = thin_customer_created(stripe_emulator, capture)
    payload = dict(request["payload"])
    secret = destination.secret
    if change == "forged":
        body, header = signed(payload, "whsec_not_the_destination_secret")
    elif change == "tampered":
        body = request["body"].replace(payload["id"].encode(), b"evt_test_forged0000")
        header = request["signature"]
    elif change == "stale":
        body, header = signed(payload, secret, timestamp=int(time.time()) - 301)
    elif change == "future":
        body, header = signed(payload, secret, timestamp=int(time.time()) + 301)
    elif change == "unsigned":
        body, header = request["body"], ""
    elif change == "malformed":
        body = request["body"][:-3]
        header = stripe_api.signature_header(
            payload=body.decode(), secret=secret, timestamp=int(time.time())
        )
    else:
        if change == "no related url":
            payload["related_object"] = {**payload["related_object"], "url": None}
        elif change == "unix created":
            payload["created"] = int(time.time())
        elif change == "odd type":
            payload["type"] = "customer.created"
        else:
            payload["id"] = "cus_123"
        body, header = signed(payload, secret)

    response = deliver(client, request, body=body, signature=header)

    assert response.status_code == 400
    assert fragment in response.json()["error"]
    assert not InboundEvent.objects.exists() and not WebhookDelivery.objects.exists()
    counted = WebhookRejectCount.objects.get()
    assert (counted.endpoint_uuid, counted.reason, counted.count) == (destination.uuid, code, 1)


def test_a_disabled_or_unknown_destination_is_404(client, stripe_emulator, capture, destination):
    request = thin_customer_created(stripe_emulator, capture)
    EventDestination.objects.filter(pk=destination.pk).update(status="disabled")
    assert deliver(client, request).status_code == 404
    assert not InboundEvent.objects.exists()


def test_a_thin_event_about_an_object_the_shop_does_not_mirror_is_recorded_not_retried(
    client,
    stripe_emulator,
    capture,
    destination,
):
    # Given Stripe's documented v1 thin event about a billing meter (the shop mirrors none)
    request = thin_customer_created(stripe_emulator, capture)
    payload = {
        "id": "evt_test_65R9Ijk8cBa1S3ySlxbZr4xyZAbEqa9MgkPyAbBCU4mjtH",
        "object": "v2.core.event",
        "type": "v1.billing.meter.error_report_triggered",
        "created": "2026-12-07T05:19:00.123Z",
        "livemode": False,
        "context": None,
        "reason": None,
        "related_object": {
            "id": "mtr_test_61R9Ijk8cBa1S3ySl41CkiLXpo",
            "type": "billing.meter",
            "url": "/v1/billing/meters/mtr_test_61R9Ijk8cBa1S3ySl41CkiLXpo",
        },
    }
    body, header = signed(payload, destination.secret)
    stripe_emulator.reset_stats()

    # When it arrives
    response = deliver(client, request, body=body, signature=header)

    # Then it is acknowledged and recorded, ignored without a call to Stripe, and not retried
    assert response.status_code == 200
    event = InboundEvent.objects.get(pk=payload["id"])
    assert (event.type, event.object_type) == (
        "billing.meter.error_report_triggered",
        "billing.meter",
    )
    assert event.status == "ignored" and "does not mirror" in event.outcome
    assert (event.attempts, event.next_attempt_at, event.last_error) == (0, None, "")
    assert stripe_emulator.stats()["total"] == 0


def test_a_thin_event_whose_object_is_gone_is_recorded_not_retried(
    client,
    stripe_emulator,
    capture,
    destination,
):
    request = thin_customer_created(stripe_emulator, capture)
    payload = {**request["payload"], "id": "evt_test_gone000000000000000000"}
    payload["type"] = "v1.customer.updated"
    payload["related_object"] = {
        "id": "cus_gone000000",
        "type": "customer",
        "url": "/v1/customers/cus_gone000000",
    }
    body, header = signed(payload, destination.secret)

    assert deliver(client, request, body=body, signature=header).status_code == 200

    event = InboundEvent.objects.get(pk=payload["id"])
    assert event.status == "processed" and "deleted in Stripe" in event.outcome
    assert (event.attempts, event.next_attempt_at) == (1, None)
    assert ObjectSync.objects.get(stripe_id="cus_gone000000").deleted_at is not None


def test_the_full_event_is_fetched_only_for_a_handler_that_reads_it(
    client, stripe_emulator, capture, destination, monkeypatch, request
):
    # Given a handler for customer.updated that reads what changed
    seen = []
    monkeypatch.setitem(registry.HANDLERS, "customer.updated", lambda ctx: seen.append(ctx))
    registry.READS_EVENT.add("customer.updated")
    request.addfinalizer(lambda: registry.READS_EVENT.discard("customer.updated"))
    customer = stripe_api.create(object_type="customer", params={"email": "bo@example.com"})
    stripe_api.update(object_type="customer", stripe_id=customer.id, params={"name": "Bo"})
    (delivery,) = capture.wait_for(event_type="customer.updated", thin=True)
    stripe_emulator.reset_stats()

    # When its thin event arrives
    assert deliver(client, delivery).status_code == 200

    # Then the full event was fetched once, kept, and the handler saw the change
    event = InboundEvent.objects.get(pk=delivery["payload"]["id"])
    assert event.status == "processed", event.last_error
    assert route_calls(stripe_emulator, GET_V2_EVENT) == 1
    assert event.fetched_event["id"] == event.id
    assert event.fetched_event["snapshot_event"].startswith("evt_")
    [ctx] = seen
    assert ctx.previous_attributes == {"name": None}
    assert ctx.obj["name"] == "Bo"


def test_a_ping_is_recorded_with_its_round_trip(client, stripe_emulator, capture, destination):
    from billing.webhooks.destinations import event_destination_ping

    ping = event_destination_ping(destination_id=destination.id)
    request = capture.wait_id(ping.event_id)

    assert deliver(client, request).status_code == 200

    event = InboundEvent.objects.get(pk=ping.event_id)
    assert (event.type, event.payload_style, event.status) == (
        "v2.core.event_destination.ping",
        "thin",
        "processed",
    )
    assert event.outcome.startswith(f"ping from {destination.id}: arrived")
