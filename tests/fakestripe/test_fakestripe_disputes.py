"""Disputes (chargebacks, inquiries) and early fraud warnings: Stripe's test cards, the
evidence strings, the lifecycle, its events and balance transactions, through stripe-python
and the `/_fake` controls."""

from __future__ import annotations

import datetime as dt
import urllib.error

import pytest
import stripe

from .conftest import API_KEY
from .helpers import last_event, types_since
from .test_fakestripe_refunds import pay, wait_for


def only_dispute(client, **filters):
    [dispute] = client.v1.disputes.list(params=filters).data
    return dispute


def test_fraudulent_card_opens_a_chargeback(client):
    marker = last_event(client)
    intent = pay(client, "pm_card_createDispute", amount=4200)
    assert intent.status == "succeeded"
    assert types_since(client, marker) == [
        "payment_intent.created",
        "charge.succeeded",
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "payment_intent.succeeded",
    ]
    dispute = only_dispute(client, payment_intent=intent.id)
    assert isinstance(dispute, stripe.Dispute) and dispute.id.startswith("du_")
    assert (dispute.status, dispute.reason, dispute.amount) == (
        "needs_response",
        "fraudulent",
        4200,
    )
    assert dispute.charge == intent.latest_charge and dispute.is_charge_refundable is False
    card = dispute.payment_method_details.card
    assert (card.case_type, card.network_reason_code, card.brand) == ("chargeback", "10.4", "visa")
    details = dispute.evidence_details
    assert (details.has_evidence, details.past_due, details.submission_count) == (False, False, 0)
    due = dt.datetime.fromtimestamp(details.due_by, dt.UTC)
    created = dt.datetime.fromtimestamp(dispute.created, dt.UTC)
    assert due.date() - created.date() == dt.timedelta(days=7) and due.hour == 23
    assert dispute.evidence.uncategorized_text is None
    [withdrawal] = dispute.balance_transactions
    assert (withdrawal.type, withdrawal.reporting_category) == ("adjustment", "dispute")
    assert (withdrawal.amount, withdrawal.fee, withdrawal.net) == (-4200, 1500, -5700)
    assert withdrawal.fee_details[0].description == "Dispute fee"
    assert client.v1.charges.retrieve(intent.latest_charge).disputed is True
    with pytest.raises(stripe.InvalidRequestError, match="charged back") as info:
        client.v1.refunds.create(params={"payment_intent": intent.id})
    assert info.value.code == "charge_disputed"
    events = client.v1.events.list(params={"type": "charge.dispute.created"}).data
    assert events[0].data.object.id == dispute.id


def test_winning_evidence_wins_the_dispute(client, fakestripe):
    intent = pay(client, "pm_card_createDisputeProductNotReceived")
    dispute = only_dispute(client, charge=intent.latest_charge)
    assert dispute.reason == "product_not_received"
    assert dispute.payment_method_details.card.network_reason_code == "13.1"
    marker = last_event(client)
    submitted = client.v1.disputes.update(
        dispute.id,
        params={
            "evidence": {"uncategorized_text": "winning_evidence", "customer_name": "Jenny"},
            "metadata": {"order": "42"},
        },
    )
    # submit defaults to true: under review at once, decided later
    assert submitted.status == "under_review" and submitted.metadata["order"] == "42"
    assert submitted.evidence.customer_name == "Jenny"
    assert (submitted.evidence_details.has_evidence, submitted.evidence_details.submission_count) == (True, 1)  # fmt: skip
    won = wait_for(lambda: (d := client.v1.disputes.retrieve(dispute.id)).status == "won" and d)
    assert won and won.is_charge_refundable is True
    assert [t.amount for t in won.balance_transactions] == [-2000, 2000]
    assert won.balance_transactions[1].reporting_category == "dispute_reversal"
    assert types_since(client, marker) == [
        "charge.dispute.updated",
        "charge.dispute.funds_reinstated",
        "charge.dispute.closed",
    ]
    [updated] = client.v1.events.list(params={"type": "charge.dispute.updated"}).data
    assert updated.data.previous_attributes["status"] == "needs_response"
    # a won dispute makes the charge refundable again, and stays on the charge
    assert client.v1.refunds.create(params={"payment_intent": intent.id}).status == "succeeded"
    assert client.v1.charges.retrieve(intent.latest_charge).disputed is True
    with pytest.raises(stripe.InvalidRequestError, match="already closed"):
        client.v1.disputes.update(dispute.id, params={"metadata": {"a": "b"}})
    with pytest.raises(stripe.InvalidRequestError, match="already closed"):
        client.v1.disputes.close(dispute.id)


def test_staged_evidence_then_submission_then_the_banks_decision(client, fakestripe):
    dispute = fakestripe.dispute_charge(pay(client).latest_charge, reason="duplicate")
    staged = client.v1.disputes.update(
        dispute["id"],
        params={"evidence": {"duplicate_charge_explanation": "Two orders."}, "submit": False},
    )
    assert staged.status == "needs_response"
    assert (staged.evidence_details.has_evidence, staged.evidence_details.submission_count) == (True, 0)  # fmt: skip
    submitted = client.v1.disputes.update(dispute["id"], params={"submit": True})
    assert submitted.status == "under_review" and submitted.evidence_details.submission_count == 1
    assert submitted.evidence.duplicate_charge_explanation == "Two orders."
    with pytest.raises(stripe.InvalidRequestError, match="can no longer be changed"):
        client.v1.disputes.update(dispute["id"], params={"evidence": {"receipt": "file_1"}})
    assert fakestripe.scheduled() == []  # plain evidence: the bank has not decided
    marker = last_event(client)
    lost = fakestripe.close_dispute(dispute["id"], "lost")
    assert lost["status"] == "lost" and len(lost["balance_transactions"]) == 1
    assert types_since(client, marker) == ["charge.dispute.closed"]


def test_accepting_a_dispute_loses_it(client):
    intent = pay(client, "pm_card_createDispute")
    dispute = only_dispute(client, payment_intent=intent.id)
    marker = last_event(client)
    closed = client.v1.disputes.close(dispute.id)
    assert closed.status == "lost" and closed.is_charge_refundable is False
    assert types_since(client, marker) == ["charge.dispute.closed"]
    event = client.v1.events.list(params={"type": "charge.dispute.closed"}).data[0]
    assert event.data.object.status == "lost"


def test_inquiry_card_moves_no_money_until_escalated(client, fakestripe):
    marker = last_event(client)
    intent = pay(client, "pm_card_createDisputeInquiry", amount=2100)
    assert "charge.dispute.funds_withdrawn" not in types_since(client, marker)
    inquiry = only_dispute(client, payment_intent=intent.id)
    assert (inquiry.status, inquiry.is_charge_refundable) == ("warning_needs_response", True)
    assert inquiry.balance_transactions == []
    assert inquiry.payment_method_details.card.case_type == "inquiry"
    under_review = client.v1.disputes.update(
        inquiry.id, params={"evidence": {"uncategorized_text": "escalate_inquiry_evidence"}}
    )
    assert under_review.status == "warning_under_review"
    marker = last_event(client)
    fakestripe.run_scheduled(inquiry.id)
    escalated = client.v1.disputes.retrieve(inquiry.id)
    assert (escalated.status, escalated.is_charge_refundable) == ("needs_response", False)
    assert escalated.payment_method_details.card.case_type == "chargeback"
    [withdrawal] = escalated.balance_transactions
    assert (withdrawal.amount, withdrawal.fee) == (-2100, 1500)
    assert types_since(client, marker) == [
        "charge.dispute.updated",
        "charge.dispute.funds_withdrawn",
    ]


def test_losing_evidence_closes_an_inquiry_without_a_chargeback(client, fakestripe):
    intent = pay(client, "pm_card_createDisputeInquiry")
    inquiry = only_dispute(client, payment_intent=intent.id)
    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 500})
    assert refund.status == "succeeded"  # an inquiry leaves the charge refundable
    client.v1.disputes.update(
        inquiry.id, params={"evidence": {"uncategorized_text": "losing_evidence"}}
    )
    fakestripe.run_scheduled()
    closed = client.v1.disputes.retrieve(inquiry.id)
    assert closed.status == "warning_closed" and closed.balance_transactions == []
    closing = client.v1.disputes.close(only_dispute(client, charge=pay(client, "pm_card_createDisputeInquiry").latest_charge).id)  # fmt: skip
    assert closing.status == "warning_closed"


def test_a_chargeback_fails_a_pending_refund(client, fakestripe):
    intent = pay(client, "pm_card_pendingRefund")
    refund = client.v1.refunds.create(params={"payment_intent": intent.id})
    assert refund.status == "pending"
    fakestripe.dispute_charge(intent.latest_charge)
    failed = client.v1.refunds.retrieve(refund.id)
    assert (failed.status, failed.failure_reason) == (
        "failed",
        "charge_for_pending_refund_disputed",
    )
    assert fakestripe.scheduled() == []


def test_control_endpoint_disputes_any_charge(client, fakestripe):
    first, second = pay(client, amount=3000), pay(client)
    partial = fakestripe.dispute_charge(
        first.latest_charge, reason="product_unacceptable", amount=1200
    )
    assert (partial["amount"], partial["reason"], partial["status"]) == (
        1200,
        "product_unacceptable",
        "needs_response",
    )
    assert partial["balance_transactions"][0]["net"] == -2700
    with pytest.raises(urllib.error.HTTPError) as info:
        fakestripe.dispute_charge(first.latest_charge)  # one open dispute at a time
    assert "open dispute" in info.value.payload["error"]["message"]
    with pytest.raises(urllib.error.HTTPError):
        fakestripe.dispute_charge(second.latest_charge, reason="bored")
    with pytest.raises(urllib.error.HTTPError):
        fakestripe.dispute_charge(second.latest_charge, amount=5000)
    inquiry = fakestripe.dispute_charge(second.latest_charge, inquiry=True)
    assert inquiry["status"] == "warning_needs_response"
    with pytest.raises(urllib.error.HTTPError):
        fakestripe.close_dispute(inquiry["id"], "won")  # an inquiry closes as warning_closed
    assert fakestripe.submit_dispute(inquiry["id"])["status"] == "warning_under_review"
    assert fakestripe.escalate_dispute(inquiry["id"])["status"] == "needs_response"
    assert fakestripe.close_dispute(inquiry["id"], "won")["status"] == "won"

    # the list: newest first, charge / payment_intent / created filters, paging
    assert [d.id for d in client.v1.disputes.list()] == [inquiry["id"], partial["id"]]
    assert [d.id for d in client.v1.disputes.list(params={"charge": first.latest_charge})] == [
        partial["id"]
    ]
    assert only_dispute(client, payment_intent=second.id).id == inquiry["id"]
    created = partial["created"]
    assert len(client.v1.disputes.list(params={"created": {"gte": created}}).data) == 2
    assert client.v1.disputes.list(params={"created": {"lt": created}}).data == []
    page = client.v1.disputes.list(params={"limit": 1})
    assert page.has_more and [d.id for d in page.auto_paging_iter()] == [
        inquiry["id"],
        partial["id"],
    ]
    expanded = client.v1.disputes.retrieve(partial["id"], params={"expand": ["charge"]})
    assert expanded.charge.disputed is True


def test_evidence_is_validated(client, fakestripe):
    dispute = fakestripe.dispute_charge(pay(client).latest_charge)
    with pytest.raises(stripe.InvalidRequestError, match="evidence\\[favourite_colour\\]"):
        client.v1.disputes.update(dispute["id"], params={"evidence": {"favourite_colour": "x"}})
    with pytest.raises(stripe.InvalidRequestError, match="150,000"):
        client.v1.disputes.update(
            dispute["id"], params={"evidence": {"uncategorized_text": "x" * 150_001}}
        )
    unchanged = client.v1.disputes.retrieve(dispute["id"])
    assert unchanged.status == "needs_response" and unchanged.evidence_details.has_evidence is False
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.disputes.retrieve("du_missing")
    assert info.value.http_status == 404


def test_early_fraud_warning_card(client):
    marker = last_event(client)
    intent = pay(client, "pm_card_createIssuerFraudRecord")
    assert types_since(client, marker) == [
        "payment_intent.created",
        "charge.succeeded",
        "radar.early_fraud_warning.created",
        "payment_intent.succeeded",
    ]
    assert client.v1.disputes.list().data == []
    [warning] = client.v1.radar.early_fraud_warnings.list(
        params={"charge": intent.latest_charge}
    ).data
    assert isinstance(warning, stripe.radar.EarlyFraudWarning)
    assert warning.id.startswith("issfr_") and warning.actionable is True
    assert (warning.fraud_type, warning.payment_intent) == ("made_with_stolen_card", intent.id)
    client.v1.refunds.create(params={"payment_intent": intent.id})
    assert client.v1.radar.early_fraud_warnings.retrieve(warning.id).actionable is False
    [updated] = client.v1.events.list(params={"type": "radar.early_fraud_warning.updated"}).data
    assert updated.data.previous_attributes["actionable"] is True


def test_dispute_card_through_checkout(client, fakestripe, prices):
    one_time, _ = prices
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "success_url": "http://127.0.0.1/ok",
            "line_items": [{"price": one_time.id, "quantity": 1}],
        }
    )
    fakestripe.complete_checkout(session.id, card="4000 0000 0000 0259")
    intent = client.v1.checkout.sessions.retrieve(session.id).payment_intent
    assert only_dispute(client, payment_intent=intent).status == "needs_response"


def test_webhook_endpoints_subscribe_to_dispute_events(client, fakestripe, receiver):
    types = [
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
        "radar.early_fraud_warning.created",
    ]
    endpoint = client.v1.webhook_endpoints.create(
        params={"url": receiver.url, "enabled_events": types}
    )
    assert endpoint.enabled_events == types
    dispute = only_dispute(client, charge=pay(client, "pm_card_createDispute").latest_charge)
    fakestripe.submit_dispute(dispute.id)
    fakestripe.close_dispute(dispute.id, "won")
    assert fakestripe.wait_deliveries(5)
    assert receiver.types() == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.updated",
        "charge.dispute.funds_reinstated",
        "charge.dispute.closed",
    ]
    request = receiver.requests[-1]
    event = stripe.StripeClient(API_KEY).construct_event(
        request["body"], request["headers"]["Stripe-Signature"], endpoint.secret
    )
    assert isinstance(event.data.object, stripe.Dispute) and event.data.object.status == "won"
