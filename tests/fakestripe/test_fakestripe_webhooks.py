"""Signed webhook delivery, retries, resend, versions and every fault."""

from __future__ import annotations

import itertools
import time
import urllib.error
import urllib.request

import pytest
import stripe

from fakestripe.client import FakeStripeClient
from fakestripe.server import FakeStripeServer

KEY = "sk_test_fakestripe"


def test_signed_delivery_verifies_with_construct_event(client, fakestripe, receiver):
    endpoint = client.v1.webhook_endpoints.create(
        params={"url": receiver.url, "enabled_events": ["customer.created"]}
    )
    customer = client.v1.customers.create(params={"email": "w@example.com"})
    client.v1.customers.update(customer.id, params={"name": "not subscribed"})
    assert fakestripe.wait_deliveries(5)
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["user-agent"] == "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    event = stripe.Webhook.construct_event(
        request["body"].decode(), headers["stripe-signature"], endpoint.secret
    )
    assert event.type == "customer.created" and event.data.object.id == customer.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            request["body"].decode(), headers["stripe-signature"], "whsec_wrong"
        )
    assert client.v1.events.retrieve(event.id).pending_webhooks == 0
    [delivery] = fakestripe.deliveries(event=event.id)
    assert delivery["endpoint"] == endpoint.id and delivery["attempt"] == 1
    assert delivery["status"] == 200 and delivery["duration_ms"] >= 0


def test_events_arrive_in_creation_order(client, fakestripe, receiver, endpoint):
    for i in range(15):
        client.v1.customers.create(params={"email": f"o{i}@example.com"})
    assert fakestripe.wait_deliveries(5)
    emails = [e["data"]["object"]["email"] for e in receiver.events()]
    assert emails == [f"o{i}@example.com" for i in range(15)]


def test_endpoint_api_version_shapes_the_event(client, fakestripe, receiver):
    client.v1.webhook_endpoints.create(
        params={
            "url": receiver.url,
            "enabled_events": ["invoice.paid", "customer.subscription.created"],
            "api_version": "2024-06-20",
        }
    )
    price = client.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 100,
            "recurring": {"interval": "month"},
            "product_data": {"name": "p"},
        }
    )
    customer = client.v1.customers.create()
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "default_payment_method": "pm_card_visa",
        }
    )
    assert fakestripe.wait_deliveries(5)
    events = {e["type"]: e for e in receiver.events()}
    assert {e["api_version"] for e in events.values()} == {"2024-06-20"}
    assert events["customer.subscription.created"]["data"]["object"]["current_period_end"]
    assert events["invoice.paid"]["data"]["object"]["subscription"] == sub.id
    # The same event read through the API keeps the account's version and current shape.
    stored = client.v1.events.list(params={"type": "invoice.paid"}).data[0]
    assert "subscription_details" not in stored.data.object


def test_failed_deliveries_are_retried_with_backoff(client, fakestripe, receiver, endpoint):
    receiver.statuses = [500, 503]
    client.v1.customers.create()
    assert fakestripe.wait_deliveries(5)
    attempts = fakestripe.deliveries()
    assert [(d["attempt"], d["status"]) for d in attempts] == [(1, 500), (2, 503), (3, 200)]
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(attempts)]
    # Retry base is 0.05 s in tests: 0.05 then 0.10.
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095
    event_id = attempts[0]["event"]
    assert client.v1.events.retrieve(event_id).pending_webhooks == 0


def test_retries_stop_after_max_attempts(client, fakestripe, receiver, endpoint):
    receiver.statuses = [500] * 10
    client.v1.customers.create()
    assert fakestripe.wait_deliveries(10)
    attempts = fakestripe.deliveries()
    assert len(attempts) == 5  # the plugin's max attempts
    assert client.v1.events.retrieve(attempts[0]["event"]).pending_webhooks == 1


def test_unreachable_and_timed_out_receivers_are_recorded(receiver):
    with FakeStripeServer(
        webhook_retry_base=0.01, webhook_max_attempts=2, webhook_timeout=0.2
    ) as server:
        client = stripe.StripeClient(KEY, base_addresses={"api": server.url}, max_network_retries=0)
        control = FakeStripeClient(server.url)
        receiver.delay = 0.5
        client.v1.webhook_endpoints.create(params={"url": receiver.url, "enabled_events": ["*"]})
        client.v1.webhook_endpoints.create(
            params={"url": "http://127.0.0.1:9/closed", "enabled_events": ["*"]}
        )
        client.v1.customers.create()
        assert control.wait_deliveries(10)
        errors = sorted({d["error"].split(":")[0] for d in control.deliveries()})
        assert errors == ["ConnectionRefusedError", "timeout"]


def test_disabled_endpoints_get_nothing(client, fakestripe, receiver, endpoint):
    client.v1.webhook_endpoints.update(endpoint.id, params={"disabled": True})
    event_count = len(client.v1.events.list().data)
    client.v1.customers.create()
    assert fakestripe.wait_deliveries(5)
    assert receiver.requests == []
    assert len(client.v1.events.list().data) == event_count + 1


def test_resend(client, fakestripe, receiver, endpoint):
    client.v1.customers.create()
    assert fakestripe.wait_deliveries(5)
    event_id = receiver.events()[0]["id"]
    result = fakestripe.resend(event_id, endpoint=endpoint.id)
    assert result["endpoints"] == [endpoint.id]
    assert fakestripe.wait_deliveries(5)
    assert [e["id"] for e in receiver.events()] == [event_id, event_id]
    assert [d["resend"] for d in fakestripe.deliveries(event=event_id)] == [False, True]


# -- delivery faults ----------------------------------------------------------------------------


def test_duplicate_deliveries(client, fakestripe, receiver, endpoint):
    fakestripe.set_faults(duplicate_deliveries=3)
    client.v1.customers.create()
    assert fakestripe.wait_deliveries(5)
    ids = [e["id"] for e in receiver.events()]
    assert len(ids) == 3 and len(set(ids)) == 1


def test_shuffle_window(client, fakestripe, receiver, endpoint):
    fakestripe.set_faults(shuffle_window=6)
    for i in range(12):
        client.v1.customers.create(params={"email": f"{i:02d}@example.com"})
    assert fakestripe.wait_deliveries(5)
    emails = [e["data"]["object"]["email"] for e in receiver.events()]
    expected = [f"{i:02d}@example.com" for i in range(12)]
    assert sorted(emails) == expected and emails != expected
    # Shuffling stays within windows of six events.
    assert sorted(emails[:6]) == expected[:6]


def test_delivery_delay(client, fakestripe, receiver, endpoint):
    fakestripe.set_faults(delivery_delay=0.3)
    started = time.time()
    client.v1.customers.create()
    assert fakestripe.wait_deliveries(5)
    assert fakestripe.deliveries()[0]["at"] - started >= 0.3


def test_endpoint_fail_first(client, fakestripe, receiver, endpoint):
    fakestripe.set_faults(endpoint_fail_first={endpoint.id: 2})
    client.v1.customers.create()
    assert fakestripe.wait_deliveries(5)
    attempts = fakestripe.deliveries()
    assert [(d["attempt"], d["forced_failure"]) for d in attempts] == [
        (1, True),
        (2, True),
        (3, False),
    ]
    # Forced failures are sent for real: the receiver saw every attempt.
    assert len(receiver.requests) == 3


# -- API faults -------------------------------------------------------------------------------


def test_rate_limit(client, fakestripe):
    fakestripe.set_faults(rate_limit=3)
    for _ in range(3):
        client.v1.customers.list()
    with pytest.raises(stripe.RateLimitError) as info:
        client.v1.customers.list()
    assert info.value.http_status == 429 and info.value.error.code == "rate_limit"
    # Control endpoints are never limited.
    assert fakestripe.faults()["rate_limit"] == 3
    time.sleep(1.05)
    client.v1.customers.list()


def test_error_rate(client, fakestripe):
    fakestripe.set_faults(error_rate=1.0)
    with pytest.raises(stripe.APIError) as info:
        client.v1.customers.create()
    assert info.value.http_status == 500
    fakestripe.clear_faults()
    assert client.v1.customers.list().data == []  # the failed create changed nothing


def test_error_every(client, fakestripe):
    fakestripe.set_faults(error_every=3)
    answers = []
    for _ in range(7):
        try:
            client.v1.customers.list()
            answers.append(200)
        except stripe.APIError as exc:
            answers.append(exc.http_status)
    assert answers == [200, 200, 500, 200, 200, 500, 200]
    fakestripe.clear_faults()
    assert client.v1.customers.list().data == []


def test_latency(client, fakestripe):
    fakestripe.set_faults(latency=0.25)
    started = time.monotonic()
    client.v1.customers.list()
    assert time.monotonic() - started >= 0.25
    started = time.monotonic()
    fakestripe.stats()
    assert time.monotonic() - started < 0.2


def test_faults_are_validated_and_cleared(fakestripe):
    with pytest.raises(urllib.error.HTTPError) as info:
        fakestripe.set_faults(no_such_fault=1)
    assert info.value.code == 400
    fakestripe.set_faults(latency=0.01, duplicate_deliveries=2)
    assert fakestripe.faults()["duplicate_deliveries"] == 2
    cleared = fakestripe.clear_faults()
    assert cleared["latency"] == 0 and cleared["duplicate_deliveries"] == 1


def test_reset_clears_everything(client, fakestripe):
    client.v1.customers.create(options={"idempotency_key": "again"})
    fakestripe.set_faults(latency=0.01)
    fakestripe.reset()
    assert fakestripe.stats()["total"] == 0
    assert fakestripe.faults()["latency"] == 0
    assert client.v1.customers.list().data == []
    assert client.v1.events.list().data == []
    replayed = client.v1.customers.create(options={"idempotency_key": "again"})
    assert replayed.last_response.headers.get("Idempotent-Replayed") is None


def test_concurrent_idempotent_requests_conflict_or_replay(fakestripe):
    """Two requests with one key at once: one runs, the other gets 409 or the replay."""
    import threading

    fakestripe.set_faults(latency=0.0)
    results = []

    def send():
        data = b"email=race%40example.com"
        request = urllib.request.Request(
            fakestripe.url + "/v1/customers",
            data=data,
            method="POST",
            headers={"Authorization": f"Bearer {KEY}", "Idempotency-Key": "race"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                results.append(response.status)
        except urllib.error.HTTPError as error:
            results.append(error.code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) <= {200, 409} and 200 in results
    client = stripe.StripeClient(KEY, base_addresses={"api": fakestripe.url})
    assert len(client.v1.customers.list().data) == 1


def test_reset_retires_delivery_workers(client, fakestripe, receiver):
    import threading

    endpoints = [
        client.v1.webhook_endpoints.create(params={"url": receiver.url, "enabled_events": ["*"]})
        for _ in range(3)
    ]
    # Only this test's endpoints: other emulators in the process have workers of their own.
    names = {f"fakestripe-webhooks-{e.id}" for e in endpoints}

    def workers() -> int:
        return sum(t.name in names and t.is_alive() for t in threading.enumerate())

    client.v1.customers.create()
    assert fakestripe.wait_deliveries(5)
    assert workers() == 3
    fakestripe.reset()
    deadline = time.monotonic() + 5
    while workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers() == 0
