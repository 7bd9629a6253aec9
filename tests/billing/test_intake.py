"""Webhook intake: every rejection answers the right status and stores nothing but a log line."""

import json
import time
import uuid

import pytest
from djstripe.models import Customer

from billing import services, stripe_api
from billing.models import InboundEvent, WebhookDelivery
from config.celery import app as celery_app
from tests.conftest import signed_body

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def customer_event(stripe_emulator):
    """A real customer.created event, as the emulator emitted it."""
    stripe_api.create(object_type="customer", params={"email": "ada@example.com"})
    (event,) = stripe_api.list_all(object_type="event", params={"type": "customer.created"})
    return stripe_api.as_dict(event)


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
    assert InboundEvent.objects.count() == 0
    assert Customer.objects.count() == 0
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.REJECTED
    assert delivery.status_code == status
    assert reason_fragment in delivery.reason
    assert delivery.body is None


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
    assert WebhookDelivery.objects.get().endpoint_id == webhook_endpoint.pk


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
    assert WebhookDelivery.objects.get().endpoint_id == webhook_endpoint.pk


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
    delivery = WebhookDelivery.objects.get()
    assert bytes(delivery.body) == body
    # the request path made no Stripe call and did no business work
    assert stripe_emulator.stats()["total"] == 0
    assert Customer.objects.count() == 0


def test_duplicates_and_second_endpoint_store_the_event_once(
    client, webhook_endpoint, customer_event
):
    other = services.webhook_endpoint_create(base_url="http://127.0.0.1:9")

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


def test_rejected_delivery_body_is_never_logged(client, webhook_endpoint, customer_event):
    body, header = signed_body(customer_event, "whsec_wrong")

    post(client, webhook_endpoint.djstripe_uuid, body, header)

    delivery = WebhookDelivery.objects.get()
    assert delivery.body is None
    assert "ada@example.com" not in json.dumps(
        {"reason": delivery.reason, "size": delivery.body_size}
    )
