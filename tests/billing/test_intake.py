"""Webhook intake: every rejection answers the right status and stores nothing but a log line."""

import json
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from djstripe.models import Customer, WebhookEndpoint

from billing import stripe_api
from billing.models import InboundEvent, WebhookDelivery, WebhookRejectCount, WebhookRejectSample
from billing.tasks import prune
from billing.webhooks import endpoints, queue, refusals
from config.celery import app as celery_app
from tests.conftest import signed_body

pytestmark = pytest.mark.django_db(transaction=True)


def customer_event_for(stripe_emulator) -> dict:
    """A real customer.created event, as the emulator emitted it."""
    stripe_api.create(object_type="customer", params={"email": "ada@example.com"})
    (event,) = stripe_api.list_all(object_type="event", params={"type": "customer.created"})
    return stripe_api.as_dict(event)


@pytest.fixture
def customer_event(stripe_emulator):
    return customer_event_for(stripe_emulator)


@pytest.fixture
def queued_not_run():
    """Tasks go to a broker nobody consumes, so the request path is observed alone."""
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True


def post(client, endpoint_uuid, body: bytes, signature: str | None):
    headers = {"HTTP_STRIPE_SIGNATURE": signature} if signature is not None else {}
    return client.post(
        f"/stripe/webhook/{endpoint_uuid}/", data=body, content_type="application/json", **headers
    )


def assert_nothing_stored(reason_fragment: str, status: int):
    """Nothing but a count of the refusal (and a sample of it, without the body)."""
    assert InboundEvent.objects.count() == 0
    assert Customer.objects.count() == 0
    assert WebhookDelivery.objects.count() == 0
    count = WebhookRejectCount.objects.get()
    assert (count.status_code, count.count) == (status, 1)
    sample = WebhookRejectSample.objects.get()
    assert sample.status_code == status
    assert sample.reason == count.reason
    assert reason_fragment in sample.detail


def test_missing_signature_is_rejected(client, webhook_endpoint, customer_event):
    body, _ = signed_body(customer_event, webhook_endpoint.secret)

    response = post(client, webhook_endpoint.djstripe_uuid, body, None)

    assert response.status_code == 400
    assert_nothing_stored("missing Stripe-Signature", 400)


def test_forged_signature_is_rejected(client, webhook_endpoint, customer_event):
    body, header = signed_body(customer_event, "whsec_not_the_endpoint_secret")

    response = post(client, webhook_endpoint.djstripe_uuid, body, header)

    assert response.status_code == 400
    assert_nothing_stored("signature", 400)


def test_tampered_body_is_rejected(client, webhook_endpoint, customer_event):
    body, header = signed_body(customer_event, webhook_endpoint.secret)
    tampered = body.replace(b"ada@example.com", b"eve@example.com")

    response = post(client, webhook_endpoint.djstripe_uuid, tampered, header)

    assert response.status_code == 400
    assert_nothing_stored("signature", 400)
    assert WebhookRejectCount.objects.get().endpoint_uuid == webhook_endpoint.djstripe_uuid


def test_replay_outside_tolerance_is_rejected(client, webhook_endpoint, customer_event):
    # Given a delivery validly signed 301 seconds ago (tolerance is 300 s)
    body, header = signed_body(
        customer_event, webhook_endpoint.secret, timestamp=int(time.time()) - 301
    )

    response = post(client, webhook_endpoint.djstripe_uuid, body, header)

    assert response.status_code == 400
    assert_nothing_stored("tolerance", 400)


def test_malformed_json_with_valid_signature_is_rejected(client, webhook_endpoint):
    body = b'{"id": "evt_1", "object": "event", '
    header = stripe_api.signature_header(
        payload=body.decode(), secret=webhook_endpoint.secret, timestamp=int(time.time())
    )

    response = post(client, webhook_endpoint.djstripe_uuid, body, header)

    assert response.status_code == 400
    assert_nothing_stored("malformed JSON", 400)


def test_signed_json_that_is_not_an_event_is_rejected(client, webhook_endpoint):
    body, header = signed_body({"object": "customer", "id": "cus_1"}, webhook_endpoint.secret)

    response = post(client, webhook_endpoint.djstripe_uuid, body, header)

    assert response.status_code == 400
    assert_nothing_stored("not a Stripe event", 400)


def test_body_over_one_mebibyte_is_rejected(client, webhook_endpoint, customer_event):
    customer_event["data"]["object"]["description"] = "x" * (1024 * 1024)
    body, header = signed_body(customer_event, webhook_endpoint.secret)

    response = post(client, webhook_endpoint.djstripe_uuid, body, header)

    assert response.status_code == 413
    assert_nothing_stored("over", 413)


def test_unknown_endpoint_is_404(client, webhook_endpoint, customer_event):
    body, header = signed_body(customer_event, webhook_endpoint.secret)

    response = post(client, uuid.uuid4(), body, header)

    assert response.status_code == 404
    assert_nothing_stored("unknown or disabled", 404)


def test_disabled_endpoint_is_404(client, webhook_endpoint, customer_event):
    webhook_endpoint.status = "disabled"
    webhook_endpoint.save(update_fields=["status"])
    body, header = signed_body(customer_event, webhook_endpoint.secret)

    response = post(client, webhook_endpoint.djstripe_uuid, body, header)

    assert response.status_code == 404
    assert_nothing_stored("unknown or disabled", 404)
    assert WebhookRejectCount.objects.get().endpoint_uuid == webhook_endpoint.djstripe_uuid


def test_get_is_not_allowed(client, webhook_endpoint):
    response = client.get(f"/stripe/webhook/{webhook_endpoint.djstripe_uuid}/")

    assert response.status_code == 405
    assert InboundEvent.objects.count() == 0


def test_valid_delivery_is_stored_and_acknowledged_without_calling_stripe(
    client, webhook_endpoint, customer_event, stripe_emulator, queued_not_run
):
    stripe_emulator.reset_stats()
    body, header = signed_body(customer_event, webhook_endpoint.secret)

    response = post(client, webhook_endpoint.djstripe_uuid, body, header)

    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    event = InboundEvent.objects.get()
    assert event.id == customer_event["id"]
    assert event.status == InboundEvent.Status.PENDING
    assert event.object_id == customer_event["data"]["object"]["id"]
    # the event's JSON is stored once, on the event; the delivery log row has no copy
    assert event.payload == json.loads(body)
    delivery = WebhookDelivery.objects.get()
    assert not hasattr(delivery, "body")
    assert delivery.body_size == len(body)
    assert delivery.signature_timestamp is not None
    # the request path made no Stripe call and did no business work
    assert stripe_emulator.stats()["total"] == 0
    assert Customer.objects.count() == 0


def test_duplicates_and_second_endpoint_store_the_event_once(
    client, webhook_endpoint, customer_event
):
    other = endpoints.webhook_endpoint_create(base_url="http://127.0.0.1:9")

    for endpoint in (webhook_endpoint, webhook_endpoint, other):
        body, header = signed_body(customer_event, endpoint.secret)
        assert post(client, endpoint.djstripe_uuid, body, header).status_code == 200

    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.PROCESSED
    outcomes = sorted(event.deliveries.values_list("outcome", flat=True))
    assert outcomes == ["accepted", "duplicate", "duplicate"]
    assert {d.endpoint_id for d in event.deliveries.all()} == {webhook_endpoint.pk, other.pk}


def test_processing_syncs_the_mirror_from_a_fresh_fetch(deliver_event, customer_event):
    # Given the event's snapshot is older than Stripe's current object
    customer_id = customer_event["data"]["object"]["id"]
    stripe_api.update(
        object_type="customer", stripe_id=customer_id, params={"email": "new@example.com"}
    )

    response = deliver_event(customer_event)

    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.PROCESSED, event.last_error
    assert Customer.objects.get(id=customer_id).email == "new@example.com"


def test_event_type_without_handler_is_stored_and_ignored(
    deliver_event, customer_event, stripe_emulator
):
    customer_event["type"] = "customer.tax_id.created"
    stripe_emulator.reset_stats()

    response = deliver_event(customer_event)

    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.IGNORED
    assert stripe_emulator.stats()["total"] == 0


def test_rejected_delivery_body_is_never_logged(
    client, webhook_endpoint, customer_event, log_output
):
    body, header = signed_body(customer_event, "whsec_wrong")

    response = post(client, webhook_endpoint.djstripe_uuid, body, header)

    assert response.status_code == 400
    # the refusal was logged (so the log is really captured) ...
    logged = log_output.getvalue()
    assert "webhook delivery rejected (400)" in logged
    assert str(webhook_endpoint.djstripe_uuid) in logged
    # ... without the body, its customer's email, or the signature
    assert "ada@example.com" not in logged
    assert customer_event["id"] not in logged
    assert header.split("v1=")[1] not in logged
    sample = WebhookRejectSample.objects.get()
    stored = json.dumps({"detail": sample.detail, "size": sample.body_size})
    assert "ada@example.com" not in stored


def test_signature_timestamp_in_the_future_is_rejected(client, webhook_endpoint, customer_event):
    # Given a delivery validly signed for 301 seconds from now (tolerance is 300 s)
    body, header = signed_body(
        customer_event, webhook_endpoint.secret, timestamp=int(time.time()) + 301
    )

    response = post(client, webhook_endpoint.djstripe_uuid, body, header)

    assert response.status_code == 400
    assert_nothing_stored("future", 400)
    assert WebhookRejectCount.objects.get().reason == "future_timestamp"


def test_signature_timestamp_slightly_ahead_is_accepted(
    client, webhook_endpoint, customer_event, queued_not_run
):
    # clocks differ a little: within the tolerance a timestamp ahead of ours is fine
    body, header = signed_body(
        customer_event, webhook_endpoint.secret, timestamp=int(time.time()) + 60
    )

    assert post(client, webhook_endpoint.djstripe_uuid, body, header).status_code == 200


def test_refusals_are_counted_per_endpoint_kind_and_minute_with_bounded_samples(
    client, webhook_endpoint, customer_event
):
    # Given a flood of forged deliveries, and requests to unknown endpoints
    body, header = signed_body(customer_event, "whsec_forged")
    for _ in range(30):
        assert post(client, webhook_endpoint.djstripe_uuid, body, header).status_code == 400
    unknown = uuid.uuid4()
    for _ in range(3):
        assert post(client, unknown, body, header).status_code == 404

    # Then one counter row per endpoint and kind for this minute, not a row per request
    counts = {(c.endpoint_uuid, c.reason): c.count for c in WebhookRejectCount.objects.all()}
    assert counts == {
        (webhook_endpoint.djstripe_uuid, "bad_signature"): 30,
        (refusals.UNKNOWN_ENDPOINTS, "unknown_endpoint"): 3,  # made-up uuids share one
    }
    # and only the first few of each kind in detail
    assert WebhookRejectSample.objects.filter(reason="bad_signature").count() == (
        refusals.REJECT_SAMPLES_PER_MINUTE
    )
    assert WebhookRejectSample.objects.filter(reason="unknown_endpoint").count() == 3
    assert WebhookDelivery.objects.count() == 0


def test_reject_samples_keep_only_the_newest(client, webhook_endpoint, customer_event, monkeypatch):
    monkeypatch.setattr(refusals, "REJECT_SAMPLES_PER_MINUTE", 1000)  # every refusal sampled
    for n in range(refusals.REJECT_SAMPLES + 20):
        body, header = signed_body({**customer_event, "id": f"evt_forged_{n}"}, "whsec_forged")
        post(client, webhook_endpoint.djstripe_uuid, body, header)

    sizes = list(WebhookRejectSample.objects.order_by("pk").values_list("body_size", flat=True))
    assert len(sizes) == refusals.REJECT_SAMPLES
    assert WebhookRejectSample.objects.order_by("pk").first().pk > 20  # the oldest 20 went


def test_made_up_urls_neither_grow_the_counts_nor_push_real_refusals_out(
    client, webhook_endpoint, customer_event
):
    # Given a real refusal on the real endpoint
    body, header = signed_body(customer_event, "whsec_forged")
    post(client, webhook_endpoint.djstripe_uuid, body, header)

    # When someone POSTs to many made-up webhook URLs
    for _ in range(300):
        post(client, uuid.uuid4(), body, header)

    # Then their refusals are counted in one row per minute (or two, across a minute's end)
    unknown = WebhookRejectCount.objects.filter(reason="unknown_endpoint")
    assert unknown.count() <= 2 and sum(unknown.values_list("count", flat=True)) == 300
    assert set(unknown.values_list("endpoint_uuid", flat=True)) == {refusals.UNKNOWN_ENDPOINTS}
    # and the real refusal is still kept in detail, beside a few of theirs
    assert WebhookRejectSample.objects.filter(reason="bad_signature").count() == 1
    assert WebhookRejectSample.objects.filter(reason="unknown_endpoint").count() <= (
        refusals.UNKNOWN_ENDPOINT_SAMPLES
    )


def test_prune_drops_old_deliveries_and_refusal_counts(
    client, webhook_endpoint, customer_event, queued_not_run
):
    body, header = signed_body(customer_event, webhook_endpoint.secret)
    post(client, webhook_endpoint.djstripe_uuid, body, header)
    post(client, webhook_endpoint.djstripe_uuid, body, "t=1,v1=forged")
    long_ago = timezone.now() - timedelta(days=40)
    WebhookDelivery.objects.update(received_at=long_ago)
    WebhookRejectCount.objects.update(minute=long_ago)
    WebhookRejectSample.objects.update(received_at=long_ago)
    post(client, webhook_endpoint.djstripe_uuid, body, "t=1,v1=forged")  # a recent one

    pruned = prune.apply().get()

    # the old delivery's hour was counted first (billing.traffic), then dropped with it
    assert pruned == {
        "delivery_counts": 1, "deliveries": 1, "reject_counts": 1, "reject_samples": 1
    }  # fmt: skip
    assert InboundEvent.objects.count() == 1  # events stay
    assert WebhookRejectCount.objects.count() == WebhookRejectSample.objects.count() == 1


@pytest.mark.parametrize("copy", ["new", "duplicate"])
def test_intake_makes_at_most_four_queries(
    client, webhook_endpoint, customer_event, queued_not_run, copy
):
    body, header = signed_body(customer_event, webhook_endpoint.secret)
    if copy == "duplicate":
        InboundEvent.objects.update()  # nothing yet
        assert post(client, webhook_endpoint.djstripe_uuid, body, header).status_code == 200
        # old enough for a duplicate to queue it again
        InboundEvent.objects.update(queued_at=timezone.now() - timedelta(minutes=1))

    with CaptureQueriesContext(connection) as queries:
        response = post(client, webhook_endpoint.djstripe_uuid, body, header)

    assert response.status_code == 200
    assert response.json()["duplicate"] is (copy == "duplicate")
    assert len(queries) <= 4, [q["sql"][:120] for q in queries.captured_queries]
    assert WebhookDelivery.objects.count() == (2 if copy == "duplicate" else 1)


def test_a_duplicate_of_a_pending_event_queues_it_again(client, webhook_endpoint, customer_event):
    body, header = signed_body(customer_event, webhook_endpoint.secret)
    # Given an event whose task went to a broker nobody consumes (as if it were lost)
    celery_app.conf.task_always_eager = False
    try:
        post(client, webhook_endpoint.djstripe_uuid, body, header)
    finally:
        celery_app.conf.task_always_eager = True
    assert InboundEvent.objects.get().status == InboundEvent.Status.PENDING

    # When Stripe sends a copy within seconds, nothing more is queued (its task is young)
    post(client, webhook_endpoint.djstripe_uuid, body, header)
    assert InboundEvent.objects.get().status == InboundEvent.Status.PENDING

    # When a copy comes once the task had time to run, the event is queued and processed
    InboundEvent.objects.update(queued_at=timezone.now() - timedelta(seconds=10))
    response = post(client, webhook_endpoint.djstripe_uuid, body, header)

    assert response.json() == {"received": True, "duplicate": True}
    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.PROCESSED, event.last_error
    assert event.attempts == 1
    assert Customer.objects.count() == 1


@pytest.fixture
def broker_down():
    """The product's Celery app publishing to a broker nobody listens on (port 9, discard).

    The write URL: CELERY_BROKER_URL in the environment (worker runs) wins over broker_url.
    """
    previous = celery_app.conf.broker_write_url
    celery_app.conf.task_always_eager = False
    celery_app.conf.broker_write_url = "redis://127.0.0.1:9/0"
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    yield
    celery_app.conf.broker_write_url = previous
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    celery_app.conf.task_always_eager = True


def test_delivery_is_acknowledged_fast_when_the_broker_is_down(
    client,
    webhook_endpoint,
    customer_event,
    broker_down,
    log_output,
    django_capture_on_commit_callbacks,
):
    body, header = signed_body(customer_event, webhook_endpoint.secret)

    started = time.monotonic()
    response = post(client, webhook_endpoint.djstripe_uuid, body, header)
    elapsed = time.monotonic() - started

    # Then Stripe gets its 200 at once: the event is stored, the failure logged
    assert response.status_code == 200, response.content
    assert elapsed < 2.5
    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.PENDING
    # marked as not queued, so the next periodic requeue sends it at once
    assert event.queued_at is None
    assert f"could not queue event {event.id}" in log_output.getvalue()
    # the periodic requeue picks it (and, the broker still down, logs again)
    assert queue.events_requeue() == 1
    assert log_output.getvalue().count(f"could not queue event {event.id}") == 2


def endpoint_queries(queries) -> list[str]:
    table = connection.ops.quote_name(WebhookEndpoint._meta.db_table)
    return [q["sql"] for q in queries.captured_queries if f"FROM {table}" in q["sql"]]


def deliver_copy(client, endpoint, event: dict, event_id: str, secret: str) -> int:
    """Post ``event`` under another id, signed with ``secret``; the status code."""
    body, header = signed_body({**event, "id": event_id}, secret)
    return post(client, endpoint.djstripe_uuid, body, header).status_code


def test_a_warm_endpoint_costs_no_query_and_a_rotated_secret_is_read_fresh(
    client, webhook_endpoint, customer_event, queued_not_run
):
    webhook_endpoint = WebhookEndpoint.objects.get(pk=webhook_endpoint.pk)  # nothing deferred
    secret = webhook_endpoint.secret
    with CaptureQueriesContext(connection) as cold:
        assert deliver_copy(client, webhook_endpoint, customer_event, "evt_c1", secret) == 200
    with CaptureQueriesContext(connection) as warm:
        assert deliver_copy(client, webhook_endpoint, customer_event, "evt_c2", secret) == 200
    assert len(endpoint_queries(cold)) == 1
    assert endpoint_queries(warm) == []
    assert len(warm) == len(cold) - 1

    # Another process rotates the secret (no signal reaches this one's cache): the first
    # delivery signed with the new secret is verified on a fresh read, not refused.
    new_secret = "whsec_rotatedelsewhere0123456789"
    WebhookEndpoint.objects.filter(pk=webhook_endpoint.pk).update(secret=new_secret)
    with CaptureQueriesContext(connection) as rotated:
        assert deliver_copy(client, webhook_endpoint, customer_event, "evt_c3", new_secret) == 200
    assert len(endpoint_queries(rotated)) == 1
    assert InboundEvent.objects.filter(pk="evt_c3").exists()
    assert not WebhookRejectCount.objects.exists()


def test_a_disabled_endpoint_stops_accepting_at_once_here_and_after_the_cache_time_elsewhere(
    client, webhook_endpoint, customer_event, queued_not_run, settings
):
    def deliver(event_id: str) -> int:
        secret = webhook_endpoint.secret
        return deliver_copy(client, webhook_endpoint, customer_event, event_id, secret)

    assert deliver("evt_d1") == 200  # cached now

    webhook_endpoint.status = "disabled"
    webhook_endpoint.save(update_fields=["status"])  # here: the cache forgets it
    assert deliver("evt_d2") == 404

    webhook_endpoint.status = "enabled"
    webhook_endpoint.save(update_fields=["status"])
    assert deliver("evt_d3") == 200
    # Disabled by another process: this one may accept for BILLING_ENDPOINT_CACHE_SECONDS...
    WebhookEndpoint.objects.filter(pk=webhook_endpoint.pk).update(status="disabled")
    assert deliver("evt_d4") == 200
    # ...and refuses once its entry is older than that.
    settings.BILLING_ENDPOINT_CACHE_SECONDS = 0
    assert deliver("evt_d5") == 404
    stored = set(InboundEvent.objects.values_list("pk", flat=True))
    assert stored == {"evt_d1", "evt_d3", "evt_d4"}


def test_deliveries_skip_the_page_middleware_and_keep_the_security_headers(
    client, webhook_endpoint, customer_event, queued_not_run
):
    body, header = signed_body(customer_event, webhook_endpoint.secret)

    response = post(client, webhook_endpoint.djstripe_uuid, body, header)

    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware ran
    # nothing of the page stack below it: no session, CSP or frame header, no Vary: Cookie
    assert "Content-Security-Policy" not in response
    assert "X-Frame-Options" not in response
    assert "Cookie" not in response.get("Vary", "")
    assert not response.cookies
    # a page goes through all of it
    page = client.get("/")
    assert "Content-Security-Policy" in page and page["X-Frame-Options"] == "DENY"
    # a path under the prefix that is not a webhook URL is answered as any unknown page
    assert client.post("/stripe/webhook/not-a-uuid/").status_code == 404
