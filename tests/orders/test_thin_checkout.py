"""A checkout paid end to end with the deployment on one receiver: a thin event destination
only, or a snapshot webhook endpoint only. The receiver is made as an operator makes it
(``stripe_webhooks sync`` with ``STRIPE_EVENT_PAYLOAD``), the customer buys through the real
buy view, pays on the emulator's Checkout, and the emulator delivers its events, signed, to the
live server: the order is paid by the webhook alone (no return page is visited).
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from djstripe.models import Session

from billing.models import EventDestination, InboundEvent, WebhookDelivery
from orders.models import Order, OrderPayment
from tests.conftest import wait_for
from tests.orders.helpers import bought

pytestmark = pytest.mark.django_db(transaction=True)

GET_SESSION = "GET /v1/checkout/sessions/{id}"


@pytest.mark.parametrize("style", ["thin", "snapshot"])
def test_a_checkout_is_paid_end_to_end_through_one_receiver_of_either_style(
    style, client, customer, catalog, settings, live_server, stripe_emulator
):
    # Given this deployment on one receiver of one payload style, made by the operator's command
    settings.SITE_URL = live_server.url
    settings.STRIPE_EVENT_PAYLOAD = style
    out = io.StringIO()
    call_command("stripe_webhooks", "sync", stdout=out)
    assert "Created " in out.getvalue()
    if style == "thin":
        (destination,) = EventDestination.objects.all()
        assert destination.event_payload == "thin"
        assert all(t.startswith(("v1.", "v2.")) for t in destination.enabled_events)

    # When a customer buys, pays on Checkout, and Stripe delivers what happened
    client.force_login(customer)
    order = bought(client, catalog["usd"])
    assert order.status == Order.Status.AWAITING_PAYMENT
    stripe_emulator.reset_stats()
    stripe_emulator.complete_checkout(order.checkout_session_id)
    wait_for(lambda: Order.objects.get(pk=order.pk).status == Order.Status.FULFILLED, 30)
    assert stripe_emulator.wait_deliveries(30)
    wait_for(lambda: not InboundEvent.objects.exclude(status__in=InboundEvent.FINAL).exists(), 30)

    # Then the order is paid once, by its own payment
    order.refresh_from_db()
    history = list(order.history.values_list("to_status", flat=True))
    assert history.count(Order.Status.PAID) == 1
    assert OrderPayment.objects.filter(order=order).count() == 1
    # every event came in the deployment's one style, and none failed
    events = InboundEvent.objects.all()
    assert {e.payload_style for e in events} == {style}
    assert {e.status for e in events} <= {"processed", "ignored"}, [
        (e.id, e.type, e.status, e.outcome) for e in events if e.status not in ("processed",)
    ]
    completed = events.get(type="checkout.session.completed")
    assert completed.status == "processed"
    assert completed.object_id == order.checkout_session_id
    if style == "thin":
        # the notification as received carries no snapshot: the session was fetched
        assert completed.payload["object"] == "v2.core.event"
        assert "data" not in completed.payload
        assert completed.payload["type"] == "v1.checkout.session.completed"
        assert completed.api_version == ""
    else:
        assert completed.payload["object"] == "event"
        assert completed.api_version == settings.STRIPE_API_VERSION
    # the mirror holds the session Stripe has now (fetched, not read from a payload)
    assert Session.objects.get(id=order.checkout_session_id).stripe_data["status"] == "complete"
    assert stripe_emulator.stats()["by_route"].get(GET_SESSION, 0) >= 1
    # and every delivery went to the one receiver
    receivers = set(WebhookDelivery.objects.values_list("endpoint_uuid", flat=True))
    assert len(receivers) == 1
    # on a thin destination only, no full v2 event was needed to pay an order (no twin can exist)
    if style == "thin":
        assert stripe_emulator.stats()["by_route"].get("GET /v2/core/events/{evt_id}", 0) == 0
