"""Payment intents, payment methods, charges and refunds through stripe-python."""

from __future__ import annotations

import pytest
import stripe


def test_payment_intent_confirm_succeeds_and_charge_copies_metadata(client):
    customer = client.v1.customers.create(params={"email": "p@example.com"})
    intent = client.v1.payment_intents.create(
        params={
            "amount": 2500,
            "currency": "usd",
            "customer": customer.id,
            "metadata": {"order_id": "42"},
            "description": "Order 42",
        }
    )
    assert intent.status == "requires_payment_method"
    assert intent.client_secret.startswith(intent.id + "_secret_")
    confirmed = client.v1.payment_intents.confirm(
        intent.id, params={"payment_method": "pm_card_visa"}
    )
    assert confirmed.status == "succeeded" and confirmed.amount_received == 2500
    charge = client.v1.charges.retrieve(confirmed.latest_charge)
    assert charge.status == "succeeded" and charge.paid and charge.captured
    assert charge.metadata.to_dict() == {"order_id": "42"}
    assert charge.payment_method_details.card.last4 == "4242"
    assert charge.payment_method_details.card.brand == "visa"
    assert charge.receipt_url and charge.customer == customer.id
    # The charge copied the metadata once: later intent updates do not follow.
    client.v1.payment_intents.update(intent.id, params={"metadata": {"order_id": "43"}})
    assert client.v1.charges.retrieve(charge.id).metadata["order_id"] == "42"
    assert [c.id for c in client.v1.charges.list(params={"customer": customer.id})] == [charge.id]
    assert [p.id for p in client.v1.payment_intents.list(params={"customer": customer.id})] == [
        intent.id
    ]
    types = [e.type for e in reversed(client.v1.events.list().data)]
    assert types[-3:] == ["charge.succeeded", "payment_intent.succeeded", "payment_intent.updated"]


@pytest.mark.parametrize(
    ("payment_method", "code", "decline_code", "message"),
    [
        ("pm_card_chargeDeclined", "card_declined", "generic_decline", "Your card was declined."),
        (
            "pm_card_chargeDeclinedInsufficientFunds",
            "card_declined",
            "insufficient_funds",
            "Your card has insufficient funds.",
        ),
        (
            "pm_card_chargeDeclinedExpiredCard",
            "expired_card",
            "expired_card",
            "Your card has expired.",
        ),
    ],
)
def test_declines_raise_card_errors(client, payment_method, code, decline_code, message):
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "payment_method": payment_method,
                "confirm": True,
            }
        )
    error = info.value
    assert error.http_status == 402 and error.code == code
    assert error.error.decline_code == decline_code and error.user_message == message
    intent = client.v1.payment_intents.retrieve(error.error.payment_intent.id)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.decline_code == decline_code
    failed = client.v1.charges.retrieve(intent.latest_charge)
    assert failed.status == "failed" and failed.failure_code == code
    # The same intent can be confirmed again with another card.
    retried = client.v1.payment_intents.confirm(
        intent.id, params={"payment_method": "pm_card_mastercard"}
    )
    assert retried.status == "succeeded"
    brand = client.v1.charges.retrieve(retried.latest_charge).payment_method_details.card.brand
    assert brand == "mastercard"
    types = [e.type for e in reversed(client.v1.events.list().data)]
    assert types == [
        "payment_intent.created",
        "charge.failed",
        "payment_intent.payment_failed",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]


def test_cancel_and_invalid_transitions(client):
    intent = client.v1.payment_intents.create(params={"amount": 700, "currency": "eur"})
    canceled = client.v1.payment_intents.cancel(
        intent.id, params={"cancellation_reason": "requested_by_customer"}
    )
    assert canceled.status == "canceled" and canceled.canceled_at
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})
    assert info.value.code == "payment_intent_unexpected_state"
    paid = client.v1.payment_intents.create(
        params={"amount": 700, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}
    )
    with pytest.raises(stripe.InvalidRequestError, match="status of succeeded"):
        client.v1.payment_intents.cancel(paid.id)
    assert "payment_intent.canceled" in [e.type for e in client.v1.events.list().data]


def test_payment_intent_validation(client):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(params={"currency": "usd"})
    assert info.value.param == "amount"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(params={"amount": 10, "currency": "usd"})
    assert info.value.code == "amount_too_small"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(
            params={"amount": 100, "currency": "usd", "customer": "cus_nope"}
        )
    assert info.value.param == "customer" and info.value.http_status == 400


def test_payment_methods(client):
    visa = client.v1.payment_methods.retrieve("pm_card_visa")
    assert visa.id.startswith("pm_") and visa.card.last4 == "4242" and visa.type == "card"
    customer = client.v1.customers.create()
    attached = client.v1.payment_methods.attach(visa.id, params={"customer": customer.id})
    assert attached.customer == customer.id
    listed = client.v1.payment_methods.list(params={"customer": customer.id, "type": "card"})
    assert [p.id for p in listed] == [visa.id]
    created = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": "5555555555554444"}}
    )
    assert created.card.brand == "mastercard"
    assert client.v1.payment_methods.detach(attached.id).customer is None


def test_refunds_full_and_partial(client):
    intent = client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    partial = client.v1.refunds.create(
        params={"payment_intent": intent.id, "amount": 300, "metadata": {"reason": "damaged"}}
    )
    assert partial.amount == 300 and partial.status == "succeeded"
    assert partial.charge == intent.latest_charge and partial.payment_intent == intent.id
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert charge.amount_refunded == 300 and charge.refunded is False
    assert [r.id for r in charge.refunds.data] == [partial.id]
    with pytest.raises(stripe.InvalidRequestError, match="greater than unrefunded amount") as info:
        client.v1.refunds.create(params={"charge": charge.id, "amount": 800})
    assert info.value.param == "amount"
    rest = client.v1.refunds.create(params={"charge": charge.id})
    assert rest.amount == 700
    charge = client.v1.charges.retrieve(charge.id)
    assert charge.refunded is True and charge.amount_refunded == 1000
    with pytest.raises(stripe.InvalidRequestError, match="already been refunded"):
        client.v1.refunds.create(params={"charge": charge.id})
    assert [r.id for r in client.v1.refunds.list(params={"charge": charge.id})] == [
        rest.id,
        partial.id,
    ]
    assert len(client.v1.refunds.list(params={"payment_intent": intent.id}).data) == 2
    events = client.v1.events.list(params={"types": ["charge.refunded", "refund.created"]}).data
    assert [e.type for e in reversed(events)] == ["charge.refunded", "refund.created"] * 2
    first_refund_event = events[-1]
    assert first_refund_event.data.previous_attributes["amount_refunded"] == 0
    expanded = client.v1.refunds.retrieve(rest.id, params={"expand": ["charge"]})
    assert expanded.charge.id == charge.id


def test_zero_decimal_currency(client):
    intent = client.v1.payment_intents.create(
        params={
            "amount": 1500,
            "currency": "jpy",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    assert intent.amount_received == 1500 and intent.currency == "jpy"
