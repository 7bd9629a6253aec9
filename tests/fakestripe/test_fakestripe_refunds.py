"""Refunds that settle or fail later (Stripe's asynchronous-refund test cards and the
`/_fake/refunds/{id}/fail` control), refund events and the refunds list, through
stripe-python."""

from __future__ import annotations

import time
import urllib.error

import pytest
import stripe

from .conftest import API_KEY
from .helpers import last_event, types_since


def pay(client, payment_method: str = "pm_card_visa", amount: int = 2000):
    return client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "payment_method": payment_method,
            "confirm": True,
        }
    )


def wait_for(check, timeout: float = 6.0):
    """Poll `check()` until it answers something truthy (the emulator's ticker at work)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def test_refund_fail_card_fails_later_and_gives_the_amount_back(client, fakestripe):
    intent = pay(client, "pm_card_refundFail")
    marker = last_event(client)
    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1500})
    # Stripe: "its status begins as `succeeded`", with no failure fields yet
    assert refund.status == "succeeded"
    assert "failure_reason" not in refund.to_dict()
    assert client.v1.charges.retrieve(intent.latest_charge).amount_refunded == 1500
    assert [job["action"] for job in fakestripe.scheduled()] == ["refund.fail"]

    # "Some time later" (ASYNC_REFUND_AFTER on the emulator's ticker), with no request
    failed = wait_for(lambda: (r := client.v1.refunds.retrieve(refund.id)).status == "failed" and r)
    assert failed and failed.failure_reason == "expired_or_canceled_card"
    txn = client.v1.balance_transactions.retrieve(failed.failure_balance_transaction)
    assert (txn.type, txn.amount, txn.source) == ("refund_failure", 1500, refund.id)
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert charge.amount_refunded == 0 and charge.refunded is False
    assert charge.refunds.data[0].status == "failed"
    assert types_since(client, marker) == [
        "charge.refunded",
        "refund.created",
        "refund.updated",
        "charge.refund.updated",
        "refund.failed",
    ]
    events = client.v1.events.list(params={"types": ["refund.updated", "refund.failed"]}).data
    failed_event, updated_event = events
    assert failed_event.data.object.status == "failed"
    assert failed_event.data.object.failure_reason == "expired_or_canceled_card"
    assert updated_event.data.previous_attributes["status"] == "succeeded"
    assert fakestripe.scheduled() == []


def test_pending_refund_card_succeeds_later(client, fakestripe):
    intent = pay(client, "pm_card_pendingRefund")
    refund = client.v1.refunds.create(params={"payment_intent": intent.id})
    assert (refund.status, refund.pending_reason) == ("pending", "processing")
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert charge.refunded is True and charge.refunds.data[0].status == "pending"
    marker = last_event(client)

    assert fakestripe.run_scheduled() == [{"object": refund.id, "action": "refund.succeed"}]
    done = client.v1.refunds.retrieve(refund.id)
    assert done.status == "succeeded" and "pending_reason" not in done.to_dict()
    assert types_since(client, marker) == ["refund.updated", "charge.refund.updated"]
    [event] = client.v1.events.list(params={"type": "refund.updated"}).data
    assert event.data.previous_attributes["status"] == "pending"
    assert client.v1.charges.retrieve(intent.latest_charge).refunds.data[0].status == "succeeded"


def test_card_numbers_behave_like_their_payment_methods(client, fakestripe):
    card = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": "4000 0000 0000 5126"}}
    )
    refund = client.v1.refunds.create(params={"payment_intent": pay(client, card.id).id})
    fakestripe.run_scheduled(refund.id)
    assert client.v1.refunds.retrieve(refund.id).status == "failed"
    token = client.v1.payment_methods.create(
        params={"type": "card", "card": {"token": "tok_pendingRefund"}}
    )
    pending = client.v1.refunds.create(params={"payment_intent": pay(client, token.id).id})
    assert pending.status == "pending"


def test_any_refund_can_be_failed_through_the_control_endpoint(client, fakestripe):
    intent = pay(client)
    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 500})
    failed = fakestripe.fail_refund(refund.id, failure_reason="lost_or_stolen_card")
    assert (failed["status"], failed["failure_reason"]) == ("failed", "lost_or_stolen_card")
    assert failed["failure_balance_transaction"].startswith("txn_")
    with pytest.raises(urllib.error.HTTPError) as info:
        fakestripe.fail_refund(refund.id)  # already failed
    assert info.value.code == 400
    other = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 500})
    with pytest.raises(urllib.error.HTTPError) as info:
        fakestripe.fail_refund(other.id, failure_reason="because")
    assert info.value.payload["error"]["param"] == "failure_reason"
    assert fakestripe.fail_refund(other.id)["failure_reason"] == "expired_or_canceled_card"
    with pytest.raises(urllib.error.HTTPError):
        fakestripe.succeed_refund(other.id)  # only a pending refund succeeds
    # the failed amounts are refundable again
    again = client.v1.refunds.create(params={"payment_intent": intent.id})
    assert again.amount == 2000


def test_refund_list_filters_and_pages(client):
    first, second = pay(client), pay(client)
    ids = [
        client.v1.refunds.create(params={"payment_intent": first.id, "amount": 100}).id,
        client.v1.refunds.create(params={"payment_intent": first.id, "amount": 100}).id,
        client.v1.refunds.create(params={"charge": second.latest_charge}).id,
    ]
    by_charge = client.v1.refunds.list(params={"charge": first.latest_charge})
    assert [r.id for r in by_charge] == ids[1::-1]
    by_intent = client.v1.refunds.list(params={"payment_intent": second.id})
    assert [r.id for r in by_intent] == [ids[2]]
    page = client.v1.refunds.list(params={"limit": 1})
    assert page.has_more and page.data[0].id == ids[2]
    assert [r.id for r in page.auto_paging_iter()] == ids[::-1]
    assert client.v1.refunds.retrieve(ids[0]).amount == 100
    with pytest.raises(stripe.InvalidRequestError, match="unsupported"):
        client.v1.refunds.cancel(ids[0])


def test_refund_failure_reaches_a_webhook_endpoint_subscribed_to_it(client, fakestripe, receiver):
    endpoint = client.v1.webhook_endpoints.create(
        params={
            "url": receiver.url,
            "enabled_events": ["refund.created", "refund.failed", "charge.refund.updated"],
        }
    )
    refund = client.v1.refunds.create(params={"payment_intent": pay(client).id})
    fakestripe.fail_refund(refund.id)
    assert fakestripe.wait_deliveries(5)
    assert receiver.types() == ["refund.created", "charge.refund.updated", "refund.failed"]
    request = receiver.requests[-1]
    event = stripe.StripeClient(API_KEY).construct_event(
        request["body"], request["headers"]["Stripe-Signature"], endpoint.secret
    )
    assert event.type == "refund.failed" and event.data.object.id == refund.id
