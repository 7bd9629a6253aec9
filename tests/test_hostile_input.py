"""Input nobody should send, answered without a 500 and without effects: NUL characters in
addresses, webhook bodies nested without end, an event about the wrong kind of object; and
pages for a signed-in person kept out of every cache."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from billing import stripe_api
from billing.models import InboundEvent, WebhookRejectCount
from orders.models import OrderPayment
from tests.conftest import signed_body

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/orders/%00/",
        "/admin/djstripe/customer/cus_%00/change/",
        "/admin/orders/order/?status=%00",
        "/admin/billing/inboundevent/?q=evt_%00",
        "/?x%00=1",
    ],
)
def test_a_nul_character_is_a_400_not_a_500(admin_client, path):
    response = admin_client.get(path)
    assert response.status_code == 400


def test_pages_of_a_signed_in_customer_are_never_stored(client, stripe_emulator):
    user = get_user_model().objects.create_user("c1", "c1@example.com", "a-long-password-1")
    client.force_login(user)
    for url in ("/", reverse("orders:list"), reverse("orders:account")):
        control = client.get(url)["Cache-Control"]
        assert "private" in control and "no-store" in control, (url, control)


def _post(client, endpoint, body: bytes, header: str):
    return client.post(
        f"/stripe/webhook/{endpoint.djstripe_uuid}/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )


@pytest.mark.parametrize("depth", [100, 150_000])
def test_a_body_nested_without_end_is_refused_and_counted(client, webhook_endpoint, depth):
    body = ('{"a":' * depth + "1" + "}" * depth).encode()
    _, header = signed_body({}, webhook_endpoint.secret)
    header = stripe_api.signature_header(
        payload=body.decode(), secret=webhook_endpoint.secret, timestamp=int(header[2:12])
    )
    response = _post(client, webhook_endpoint, body, header)
    assert response.status_code == 400
    assert "nested" in response.json()["error"]
    assert not InboundEvent.objects.exists()
    assert WebhookRejectCount.objects.get().reason == "malformed_json"


@pytest.mark.django_db(transaction=True)
def test_an_event_about_the_wrong_kind_of_object_runs_no_handler(
    stripe_emulator, webhook_endpoint, deliver_event
):
    # a "checkout session completed" whose object is a payment intent (signed with our secret)
    intent = stripe_api.create(
        object_type="payment_intent",
        params={"amount": 900, "currency": "usd", "payment_method": "pm_card_visa",
                "confirm": True},
    )  # fmt: skip
    event = {
        "id": "evt_wrongkind0001",
        "object": "event",
        "type": "checkout.session.completed",
        "created": 1_790_000_000,
        "api_version": "2026-08-26.dahlia",
        "livemode": False,
        "data": {"object": json.loads(json.dumps(stripe_api.as_dict(intent)))},
    }
    assert deliver_event(event).status_code == 200

    stored = InboundEvent.objects.get(pk=event["id"])
    assert stored.status == InboundEvent.Status.IGNORED
    assert "not the checkout.session" in stored.outcome
    assert not OrderPayment.objects.exists()
