"""ACH Direct Debit (`us_bank_account`) in Checkout: completed unpaid, settled later.

Test account numbers as in Stripe: 000123456789 settles, 000111111116 is returned by the bank
(no_account). Settlement runs on the emulator's own timer (`settle_after` seconds) or at once
through POST /_fake/payment_intents/{id}/settle.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import stripe

from fakestripe.server import FakeStripeServer
from tests.fakestripe.helpers import last_event, types_since

SUCCEEDS, FAILS = "000123456789", "000111111116"
FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "stripe" / "fixtures3.json"
KEY = "sk_test_fakestripe"


def new_session(client, price, mode="payment", **extra):
    return client.v1.checkout.sessions.create(
        params={
            "mode": mode,
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "http://127.0.0.1:9/ok",
            "customer_email": "ach@example.com",
            **extra,
        }
    )


def retrieve_pi(client, pi_id):
    return client.v1.payment_intents.retrieve(
        pi_id, params={"expand": ["latest_charge", "payment_method"]}
    )


def test_bank_debit_completes_unpaid_then_settles_on_its_own(client, prices, fakestripe):
    # given a payment-mode session paid by bank account, settling 0.3 s later
    session = new_session(client, prices[0], payment_intent_data={"metadata": {"order_id": "41"}})
    marker = last_event(client)
    done = fakestripe.complete_checkout_bank(session.id, SUCCEEDS, settle_after=0.3)
    # then the session is complete but unpaid, the money is processing
    assert done["status"] == "complete" and done["payment_status"] == "unpaid"
    pi = retrieve_pi(client, done["payment_intent"])
    assert pi.status == "processing" and pi.amount_received == 0
    assert pi.metadata.to_dict() == {"order_id": "41"}
    assert "us_bank_account" in pi.payment_method_types
    assert pi.payment_method.type == "us_bank_account"
    assert pi.payment_method.us_bank_account.last4 == "6789"
    assert pi.payment_method.us_bank_account.routing_number == "110000000"
    assert pi.payment_method.billing_details.email == "ach@example.com"
    assert pi.latest_charge.status == "pending" and pi.latest_charge.paid is False
    assert pi.latest_charge.payment_method_details.type == "us_bank_account"
    assert pi.latest_charge.balance_transaction is None
    assert types_since(client, marker) == [
        "payment_intent.created",
        "charge.pending",
        "payment_intent.processing",
        "checkout.session.completed",
    ]
    marker = last_event(client)
    # when nothing asks for anything for a while
    time.sleep(1.6)
    # then the emulator's own timer has settled it
    pi = retrieve_pi(client, done["payment_intent"])
    assert pi.status == "succeeded" and pi.amount_received == 2000
    assert pi.latest_charge.status == "succeeded" and pi.latest_charge.paid is True
    assert pi.latest_charge.balance_transaction.startswith("txn_")
    assert (
        client.v1.balance_transactions.retrieve(pi.latest_charge.balance_transaction).amount == 2000
    )
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"
    assert types_since(client, marker) == [
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.async_payment_succeeded",
    ]
    # and a succeeded debit can be refunded like a card payment
    refund = client.v1.refunds.create(params={"payment_intent": pi.id})
    assert refund.status == "succeeded" and refund.amount == 2000


def test_returned_debit_fails_the_intent_and_leaves_the_session_unpaid(
    client, prices, fakestripe, endpoint, receiver
):
    session = new_session(client, prices[0])
    done = fakestripe.complete_checkout_bank(session.id, FAILS, settle_after=3600)
    assert retrieve_pi(client, done["payment_intent"]).status == "processing"
    # when the bank's answer is asked for now
    settled = fakestripe.settle_payment(done["payment_intent"])
    assert settled["status"] == "requires_payment_method"
    pi = retrieve_pi(client, done["payment_intent"])
    assert pi.status == "requires_payment_method" and pi.payment_method is None
    error = pi.last_payment_error
    assert error.code == "no_account" and error.charge == pi.latest_charge.id
    assert error.message == "The customer's bank account could not be located."
    assert error.payment_method.type == "us_bank_account"
    charge = pi.latest_charge
    assert charge.status == "failed" and charge.failure_code == "no_account"
    assert charge.paid is False and charge.balance_transaction is None
    cs = client.v1.checkout.sessions.retrieve(session.id)
    assert cs.status == "complete" and cs.payment_status == "unpaid"
    # the webhook endpoint receives Stripe's events, signed, in this order
    assert fakestripe.wait_deliveries(10)
    delivered = receiver.types()
    expected = [
        "payment_intent.created",
        "charge.pending",
        "payment_intent.processing",
        "checkout.session.completed",
        "charge.failed",
        "payment_intent.payment_failed",
        "checkout.session.async_payment_failed",
    ]
    assert [t for t in delivered if t in expected] == expected
    assert all("Stripe-Signature" in r["headers"] for r in receiver.requests)
    failed = next(
        e for e in receiver.events() if e["type"] == "checkout.session.async_payment_failed"
    )
    assert failed["data"]["object"]["payment_status"] == "unpaid"
    assert failed["request"]["id"] is None  # the bank, not an API request, caused it
    # and a debit that has settled cannot be settled again
    with pytest.raises(urllib.error.HTTPError) as again:
        fakestripe.settle_payment(done["payment_intent"])
    assert again.value.code == 400
    assert "no bank debit to settle" in again.value.payload["error"]["message"]


def test_settle_refuses_a_card_payment_and_unknown_intents(client, prices, fakestripe):
    session = new_session(client, prices[0])
    done = fakestripe.complete_checkout(session.id)
    with pytest.raises(urllib.error.HTTPError) as card:
        fakestripe.settle_payment(done["payment_intent"])
    assert card.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as missing:
        fakestripe.settle_payment("pi_missing")
    assert missing.value.code == 404


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"bank_account": "12-ab"}, "Your bank account number is incorrect."),
        ({"settle_after": "-1"}, "settle_after must be a number"),
        ({"payment_method": "sepa_debit"}, "payment_method must be"),
    ],
)
def test_bad_bank_input_is_refused_and_changes_nothing(client, prices, fakestripe, extra, message):
    session = new_session(client, prices[0])
    marker = last_event(client)
    with pytest.raises(urllib.error.HTTPError) as refused:
        fakestripe.complete_checkout_bank(session.id, **{"bank_account": SUCCEEDS, **extra})
    assert refused.value.code == 400
    assert message in refused.value.payload["error"]["message"]
    cs = client.v1.checkout.sessions.retrieve(session.id)
    assert cs.status == "open" and cs.payment_intent is None
    assert types_since(client, marker) == []


def test_bank_debit_needs_usd(client, fakestripe):
    price = client.v1.prices.create(
        params={"currency": "eur", "unit_amount": 900, "product_data": {"name": "Mug"}}
    )
    session = new_session(client, price)
    with pytest.raises(urllib.error.HTTPError) as refused:
        fakestripe.complete_checkout_bank(session.id, SUCCEEDS)
    assert "only supports `usd`" in refused.value.payload["error"]["message"]
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"


@pytest.mark.parametrize("account", [SUCCEEDS, FAILS])
def test_subscription_invoice_stays_open_until_the_debit_settles(
    client, prices, fakestripe, account
):
    session = new_session(client, prices[1], mode="subscription")
    done = fakestripe.complete_checkout_bank(session.id, account, settle_after=3600)
    assert done["status"] == "complete" and done["payment_status"] == "unpaid"
    sub = client.v1.subscriptions.retrieve(done["subscription"])
    invoice = client.v1.invoices.retrieve(done["invoice"])
    assert sub.status == "incomplete" and invoice.status == "open"
    assert client.v1.payment_methods.retrieve(sub.default_payment_method).type == "us_bank_account"
    pi_id = client.v1.invoices.retrieve(done["invoice"], params={"expand": ["payments"]}).payments
    pi_id = pi_id.data[0].payment.payment_intent
    assert client.v1.payment_intents.retrieve(pi_id).status == "processing"
    marker = last_event(client)
    fakestripe.settle_payment(pi_id)
    sub = client.v1.subscriptions.retrieve(done["subscription"])
    invoice = client.v1.invoices.retrieve(done["invoice"])
    cs = client.v1.checkout.sessions.retrieve(session.id)
    if account == SUCCEEDS:
        assert sub.status == "active" and invoice.status == "paid" and invoice.amount_paid == 900
        assert cs.payment_status == "paid"
        assert types_since(client, marker) == [
            "charge.succeeded",
            "payment_intent.succeeded",
            "invoice.updated",
            "invoice.paid",
            "invoice.payment_succeeded",
            "customer.subscription.updated",
            "checkout.session.async_payment_succeeded",
        ]
    else:
        assert sub.status == "incomplete" and invoice.status == "open"
        assert cs.payment_status == "unpaid"
        assert types_since(client, marker) == [
            "charge.failed",
            "payment_intent.payment_failed",
            "invoice.payment_failed",
            "checkout.session.async_payment_failed",
        ]


def test_hosted_page_pays_by_bank_account_and_says_it_is_processing(client, prices, fakestripe):
    session = new_session(client, prices[0])
    page = urllib.request.urlopen(session.url).read().decode()
    assert 'value="us_bank_account"' in page and 'name="bank_account"' in page
    form = urllib.parse.urlencode(
        {"payment_method": "us_bank_account", "bank_account": SUCCEEDS, "card": ""}
    ).encode()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirected:
        opener.open(session.url, data=form)
    assert redirected.value.code == 303
    assert redirected.value.headers["Location"] == "http://127.0.0.1:9/ok"
    cs = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert cs.payment_status == "unpaid" and cs.payment_intent.status == "processing"
    page = urllib.request.urlopen(session.url).read().decode()
    assert "Your payment is processing" in page
    fakestripe.settle_payment(cs.payment_intent.id)
    page = urllib.request.urlopen(session.url).read().decode()
    assert "already paid" in page


def test_a_pending_debit_settles_after_a_restart(tmp_path):
    state = tmp_path / "state.jsonl"
    with FakeStripeServer(state_file=str(state)) as server:
        client = stripe.StripeClient(KEY, base_addresses={"api": server.url}, max_network_retries=0)
        price = client.v1.prices.create(
            params={"currency": "usd", "unit_amount": 5000, "product_data": {"name": "Lamp"}}
        )
        session = new_session(client, price)
        body = urllib.parse.urlencode(
            {"payment_method": "us_bank_account", "bank_account": SUCCEEDS, "settle_after": 0.5}
        ).encode()
        url = f"{server.url}/_fake/checkout/sessions/{session.id}/complete"
        done = json.loads(urllib.request.urlopen(url, data=body).read())
    # the emulator was down when the debit fell due; it settles once it is back
    time.sleep(0.6)
    with FakeStripeServer(state_file=str(state)) as server:
        time.sleep(0.5)
        client = stripe.StripeClient(KEY, base_addresses={"api": server.url}, max_network_retries=0)
        assert client.v1.payment_intents.retrieve(done["payment_intent"]).status == "succeeded"
        assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


@pytest.fixture
def stripe_examples() -> dict[str, dict]:
    if not FIXTURES.exists():
        pytest.skip(f"Stripe's fixtures are not available at {FIXTURES}")
    return json.loads(FIXTURES.read_text())["resources"]


def test_bank_debit_objects_have_stripes_keys(client, prices, fakestripe, stripe_examples):
    session = new_session(client, prices[0])
    done = fakestripe.complete_checkout_bank(session.id, SUCCEEDS, settle_after=3600)
    processing = retrieve_pi(client, done["payment_intent"])
    fakestripe.settle_payment(done["payment_intent"])
    settled = retrieve_pi(client, done["payment_intent"])
    cs = client.v1.checkout.sessions.retrieve(session.id)
    pm = processing.payment_method.to_dict()
    # A payment method carries the hash of its own type: us_bank_account instead of card.
    assert set(pm) == set(stripe_examples["payment_method"]) - {"card"} | {"us_bank_account"}
    for obj in (processing, settled):
        pi = obj.to_dict()
        pi["latest_charge"], pi["payment_method"] = "ch", "pm"
        assert set(pi) == set(stripe_examples["payment_intent"])
        assert set(obj.latest_charge.to_dict()) == set(stripe_examples["charge"])
    assert set(cs.to_dict()) == set(stripe_examples["checkout.session"])
