"""A card declined on Checkout appears in the order's history in the customer's words, once,
and changes nothing else: the order stays payable, and paying with another card pays it.

Through the real stack: the emulator's hosted checkout declines the card, its signed webhooks
reach the live server (or are delivered afterwards, out of time), the worker re-fetches the
failed charge and notes it."""

from __future__ import annotations

import urllib.error

import pytest

from billing import stripe_api
from billing.models import InboundEvent
from orders.models import Order, OrderHistory
from tests.admin.conftest import deliver_all_events
from tests.orders.helpers import bought

S = Order.Status
K = OrderHistory.Kind
pytestmark = pytest.mark.django_db(transaction=True)
INSUFFICIENT_FUNDS = "4000000000009995"
DECLINED = "4000000000000002"
LINE = "A payment attempt was declined: the card has insufficient funds. Nothing was charged"


def _decline(emulator, order: Order, card: str = INSUFFICIENT_FUNDS) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        emulator.complete_checkout(order.checkout_session_id, card=card)
    assert refused.value.code == 402


def _history(client, order: Order) -> str:
    page = client.get(f"/orders/{order.public_id}/")
    assert page.status_code == 200
    return page.content.decode()


def test_a_declined_card_is_in_the_history_and_the_order_stays_payable(
    client, customer, catalog, stripe_emulator, live_webhook_endpoint, site_url
):
    client.force_login(customer)
    order = bought(client, catalog["usd"])
    # When the customer's card is declined on Checkout (the webhooks reach the live server)
    _decline(stripe_emulator, order)
    assert stripe_emulator.wait_deliveries(15)
    # Then the order's history says so in their words, and the order is still payable
    order.refresh_from_db()
    assert order.status == S.AWAITING_PAYMENT and order.is_payable
    assert LINE in _history(client, order)
    assert "insufficient_funds" not in _history(client, order)  # Stripe's code stays internal
    noted = order.history.get(kind=K.PAYMENT_DECLINED)
    assert noted.to_status == S.AWAITING_PAYMENT and noted.event_id.startswith("evt_")
    assert "Pay now" in _history(client, order)
    # and a second delivery of the same event notes nothing more
    stripe_emulator.resend(noted.event_id)
    assert stripe_emulator.wait_deliveries(15)
    assert order.history.filter(kind=K.PAYMENT_DECLINED).count() == 1

    # When they pay on the same session with another card
    response = client.post(f"/orders/{order.public_id}/pay/")
    assert response.status_code == 303
    stripe_emulator.complete_checkout(order.checkout_session_id)
    assert stripe_emulator.wait_deliveries(15)
    # Then the order is paid, and its history tells the attempt, then the payment
    order.refresh_from_db()
    assert order.status == S.FULFILLED
    text = _history(client, order)
    assert text.index(LINE) < text.index("Payment received")


def test_a_decline_processed_after_the_payment_is_still_noted(
    client, customer, catalog, stripe_emulator, deliver_event
):
    # Given a decline, then a payment with another card, before any webhook was processed
    client.force_login(customer)
    order = bought(client, catalog["eur"])
    _decline(stripe_emulator, order, card=DECLINED)
    stripe_emulator.complete_checkout(order.checkout_session_id)
    # When the events are delivered afterwards (the payment intent now reads succeeded)
    deliver_all_events(deliver_event)
    # Then the failed charge, re-fetched, still tells the decline: noted once, in plain words
    order.refresh_from_db()
    assert order.status == S.FULFILLED
    assert order.history.filter(kind=K.PAYMENT_DECLINED).count() == 1
    assert "A payment attempt was declined: your card was declined." in _history(client, order)
    failed = InboundEvent.objects.get(type="charge.failed")
    assert "a payment attempt was declined" in failed.outcome


def test_a_failed_charge_that_was_not_an_attempt_to_pay_the_order_is_not_noted(
    client, customer, catalog, stripe_emulator, deliver_event
):
    # Given an order, and a payment intent made by hand naming it, for another amount
    client.force_login(customer)
    order = bought(client, catalog["usd"])
    with pytest.raises(stripe_api.StripeAPIError):
        stripe_api.create(
            object_type="payment_intent",
            params={
                "amount": 50,
                "currency": "usd",
                "payment_method": "pm_card_chargeDeclined",
                "confirm": True,
                "metadata": {"order_id": order.public_id, "user_id": str(customer.pk)},
            },
        )
    # When its failed charge's event is processed
    deliver_all_events(deliver_event)
    # Then the customer's history says nothing of it, and support reads why
    assert not order.history.filter(kind=K.PAYMENT_DECLINED).exists()
    assert "declined" not in _history(client, order)
    failed = InboundEvent.objects.get(type="charge.failed")
    assert "was not an attempt to pay it" in failed.outcome
