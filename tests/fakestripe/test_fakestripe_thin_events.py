"""Thin events for v1 events (`v1.<type>`), snapshot destinations, `/v2/core/events`, and the
delivery machinery (faults, resend, `/_fake/deliveries`) for both kinds of payload."""

from __future__ import annotations

import json

import pytest
import stripe
from stripe.v2.core._event import UnknownEventNotification

from .conftest import API_KEY
from .test_fakestripe_event_destinations import create, notifications


def thin_destination(client, receiver, events):
    destination = create(
        client,
        url=receiver.url,
        enabled_events=events,
        include=["webhook_endpoint.signing_secret"],
    )
    return destination, destination.webhook_endpoint.signing_secret


def test_v1_events_arrive_as_thin_events(client, fakestripe, receiver, prices):
    destination, secret = thin_destination(
        client,
        receiver,
        ["v1.checkout.session.completed", "v1.charge.refunded", "v1.customer.updated"],
    )
    one_time, _ = prices
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "success_url": "http://127.0.0.1/ok",
            "customer_creation": "always",
            "line_items": [{"price": one_time.id, "quantity": 1}],
        }
    )
    fakestripe.complete_checkout(session.id)
    session = client.v1.checkout.sessions.retrieve(session.id)
    refund = client.v1.refunds.create(
        params={"payment_intent": session.payment_intent, "amount": 500},
        options={"idempotency_key": "refund-1"},
    )
    client.v1.customers.update(session.customer, params={"name": "Jenny Rosen"})
    assert fakestripe.wait_deliveries(5)

    completed, refunded, updated = notifications(client, receiver, secret)
    assert [n.type for n in (completed, refunded, updated)] == [
        "v1.checkout.session.completed",
        "v1.charge.refunded",
        "v1.customer.updated",
    ]
    assert isinstance(completed, UnknownEventNotification)
    assert completed.related_object.url == f"/v1/checkout/sessions/{session.id}"
    assert completed.related_object.type == "checkout.session"
    assert completed.reason is None  # a hosted payment, not an API request
    assert isinstance(completed.fetch_related_object(), stripe.checkout.Session)
    charge = refunded.fetch_related_object()
    assert isinstance(charge, stripe.Charge) and charge.amount_refunded == 500
    assert refunded.reason.request.idempotency_key == "refund-1"

    # the full v2 event: the v1 event it stands for, and what an update changed
    event = refunded.fetch_event()
    assert event.object == "v2.core.event" and event.id == refunded.id
    [v1_refunded] = client.v1.events.list(params={"type": "charge.refunded"}).data
    assert event.snapshot_event == v1_refunded.id
    assert event.changes.before.amount_refunded == 0
    assert event.changes.after.amount_refunded == 500
    name_change = updated.fetch_event().changes
    assert (name_change.before.name, name_change.after.name) == (None, "Jenny Rosen")
    assert refund.id  # the refund itself was not subscribed to
    deliveries = fakestripe.deliveries(endpoint=destination.id)
    assert {d["payload"] for d in deliveries} == {"thin"}


def test_every_v1_event_type_can_go_thin(client, fakestripe, receiver, paid_flows):
    """A thin destination subscribed to everything gets a `v1.` event for each v1 event,
    each pointing at an object the API serves."""
    _, secret = thin_destination(client, receiver, ["*"])
    client.v1.refunds.create(params={"payment_intent": paid_flows.pay.payment_intent})
    fakestripe.renew_subscription(paid_flows.sub.subscription)
    client.v1.subscriptions.cancel(paid_flows.sub.subscription)
    assert fakestripe.wait_deliveries(5)
    received = notifications(client, receiver, secret)
    v1_types = [e.type for e in reversed(client.v1.events.list(params={"limit": 100}).data)]
    assert [n.type for n in received] == [f"v1.{t}" for t in v1_types[-len(received) :]]
    assert {"v1.invoice.paid", "v1.customer.subscription.deleted"} <= {n.type for n in received}
    for notification in received:
        related = notification.fetch_related_object()
        assert related.id == notification.related_object.id


def test_snapshot_destinations_get_the_v1_event(client, fakestripe, receiver):
    destination = create(
        client,
        url=receiver.url,
        event_payload="snapshot",
        enabled_events=["customer.created"],
        snapshot_api_version="2024-06-20",
        include=["webhook_endpoint.signing_secret"],
    )
    assert destination.snapshot_api_version == "2024-06-20"
    customer = client.v1.customers.create(params={"email": "snap@example.com"})
    assert fakestripe.wait_deliveries(5)
    [request] = receiver.requests
    event = stripe.StripeClient(API_KEY).construct_event(
        request["body"],
        request["headers"]["Stripe-Signature"],
        destination.webhook_endpoint.signing_secret,
    )
    assert event.type == "customer.created" and event.data.object.id == customer.id
    assert event.api_version == "2024-06-20"
    with pytest.raises(ValueError, match="webhook payload"):
        client.parse_event_notification(
            request["body"],
            request["headers"]["Stripe-Signature"],
            destination.webhook_endpoint.signing_secret,
        )
    [delivery] = fakestripe.deliveries(endpoint=destination.id)
    assert (delivery["event"], delivery["payload"]) == (event.id, "snapshot")
    assert client.v1.events.retrieve(event.id).pending_webhooks == 0
    assert client.v2.core.events.list().data == []  # no thin destination, no thin event


def test_v2_events_list_filters_and_pages(client, fakestripe, receiver):
    thin_destination(client, receiver, ["v1.customer.created", "v1.customer.updated"])
    first = client.v1.customers.create()
    second = client.v1.customers.create()
    client.v1.customers.update(first.id, params={"metadata": {"n": "1"}})
    everything = client.v2.core.events.list()
    assert [e.type for e in everything.data] == [
        "v1.customer.updated",
        "v1.customer.created",
        "v1.customer.created",
    ]
    about_first = client.v2.core.events.list(params={"object_id": first.id})
    assert [e.related_object.id for e in about_first.data] == [first.id, first.id]
    created = client.v2.core.events.list(params={"types": ["v1.customer.created"]})
    assert [e.related_object.id for e in created.data] == [second.id, first.id]
    page = client.v2.core.events.list(params={"limit": 1, "object_id": first.id})
    assert "object_id=" in page.next_page_url
    assert [e.id for e in page.auto_paging_iter()] == [e.id for e in about_first.data]
    oldest = everything.data[-1].created
    later = client.v2.core.events.list(params={"created": {"gt": oldest}})
    assert len(later.data) == 2
    retrieved = client.v2.core.events.retrieve(everything.data[0].id)
    assert retrieved.changes.after.metadata.n == "1"
    v1_event = client.v1.events.list(params={"limit": 1}).data[0]
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v2.core.events.retrieve(v1_event.id)  # v1 events are not v2 events
    assert info.value.code == "not_found"


def test_thin_deliveries_take_faults_retries_and_resends(client, fakestripe, receiver):
    destination, secret = thin_destination(client, receiver, ["v1.customer.created"])
    fakestripe.set_faults(endpoint_fail_first={destination.id: 1}, duplicate_deliveries=2)
    client.v1.customers.create()
    assert fakestripe.wait_deliveries(5)
    attempts = fakestripe.deliveries(endpoint=destination.id)
    assert [(d["attempt"], d["duplicate"], d["forced_failure"]) for d in attempts] == [
        (1, False, True),
        (1, True, True),
        (2, False, False),
        (2, True, False),
    ]
    received = notifications(client, receiver, secret)
    assert len(received) == 4 and len({n.id for n in received}) == 1
    fakestripe.clear_faults()
    resent = fakestripe.resend(received[0].id)
    assert resent["endpoints"] == [destination.id]
    assert fakestripe.wait_deliveries(5)
    assert fakestripe.deliveries(event=received[0].id)[-1]["resend"] is True
    assert len(receiver.requests) == 5


def test_disabled_and_eventbridge_destinations_get_nothing(client, fakestripe, receiver):
    destination, _ = thin_destination(client, receiver, ["v1.customer.created"])
    client.v2.core.event_destinations.disable(destination.id)
    bridge = client.v2.core.event_destinations.create(
        params={
            "name": "AWS",
            "type": "amazon_eventbridge",
            "event_payload": "thin",
            "enabled_events": ["v1.customer.created"],
            "amazon_eventbridge": {"aws_account_id": "123456789012", "aws_region": "us-east-1"},
        }
    )
    assert bridge.webhook_endpoint is None
    assert bridge.amazon_eventbridge.aws_event_source_arn.startswith(
        "arn:aws:events:us-east-1::event-source/aws.partner/stripe.com/"
    )
    assert bridge.amazon_eventbridge.aws_event_source_status == "pending"
    client.v1.customers.create()
    client.v2.core.event_destinations.ping(destination.id)
    assert fakestripe.wait_deliveries(2)
    assert receiver.requests == [] and fakestripe.deliveries() == []
    client.v2.core.event_destinations.enable(destination.id)
    client.v1.customers.create()
    assert fakestripe.wait_deliveries(5)
    assert len(receiver.requests) == 1


def test_v2_requests_take_api_faults_as_v2_errors(client, fakestripe):
    fakestripe.set_faults(error_every=1)
    with pytest.raises(stripe.APIError) as info:
        client.v2.core.event_destinations.list()
    assert info.value.json_body["error"]["type"] == "api_error"
    fakestripe.set_faults(error_every=0, rate_limit=1)
    client.v2.core.event_destinations.list()
    with pytest.raises(stripe.RateLimitError) as limited:
        client.v2.core.event_destinations.list()
    assert limited.value.json_body["error"]["type"] == "rate_limit"
    fakestripe.clear_faults()
    stats = fakestripe.stats()
    assert stats["by_route"]["GET /v2/core/event_destinations"] == 3


def test_v2_requests_are_json_and_idempotent(client, fakestripe):
    """v2 bodies are JSON (stripe-python sends them so); an idempotency key replays."""
    options = {"idempotency_key": "destination-1"}
    params = {
        "name": "Once",
        "type": "webhook_endpoint",
        "event_payload": "thin",
        "enabled_events": ["v1.customer.created"],
        "webhook_endpoint": {"url": "http://127.0.0.1:9/hook"},
    }
    first = client.v2.core.event_destinations.create(params=params, options=options)
    again = client.v2.core.event_destinations.create(params=params, options=options)
    assert first.id == again.id
    assert len(client.v2.core.event_destinations.list().data) == 1
    raw = client.raw_request("get", f"/v2/core/event_destinations/{first.id}")
    assert json.loads(raw.body)["id"] == first.id
