"""Checkout Sessions, completion without a browser, subscriptions and invoices."""

from __future__ import annotations

import time
import urllib.error

import pytest
import stripe

from tests.fakestripe.helpers import last_event, types_since


def payment_session(client, price, **extra):
    return client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 2}],
            "success_url": "http://127.0.0.1:9/ok?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://127.0.0.1:9/cancel",
            "client_reference_id": "order-7",
            "customer_email": "buyer@example.com",
            "metadata": {"order_id": "7"},
            "payment_intent_data": {
                "metadata": {"order_id": "7", "user_id": "3"},
                "description": "Order 7",
            },
            **extra,
        }
    )


def test_session_creation(client, prices, fakestripe):
    session = payment_session(client, prices[0])
    assert session.id.startswith("cs_test_") and session.status == "open"
    assert session.payment_status == "unpaid" and session.amount_total == 4000
    assert session.url == f"{fakestripe.url}/checkout/pay/{session.id}"
    assert session.payment_intent is None and session.customer is None
    assert 86000 < session.expires_at - session.created <= 86400
    items = client.v1.checkout.sessions.line_items.list(session.id)
    assert items.data[0].quantity == 2 and items.data[0].amount_total == 4000
    assert items.data[0].price.id == prices[0].id and items.data[0].description == "T-shirt"
    expanded = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert expanded.line_items.data[0].id == items.data[0].id


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"mode": "subscription", "line_items": "one_time"}, "line_items"),
        ({"mode": "payment", "line_items": "monthly"}, "line_items[0][price]"),
        ({"mode": "payment", "line_items": "one_time", "expires_at": 60}, "expires_at"),
        ({"mode": "payment", "line_items": "one_time", "expires_at": 90000}, "expires_at"),
        ({"line_items": "one_time"}, "mode"),
        ({"mode": "payment", "line_items": "one_time", "customer": "cus_nope"}, "customer"),
    ],
)
def test_session_validation(client, prices, params, param):
    price = prices[0] if params.get("line_items") == "one_time" else prices[1]
    params = dict(params, line_items=[{"price": price.id, "quantity": 1}])
    if "expires_at" in params:
        params["expires_at"] += int(time.time())
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.create(params=params)
    assert info.value.param == param


def test_price_data_line_items(client):
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "success_url": "http://127.0.0.1/ok",
            "line_items": [
                {
                    "quantity": 3,
                    "price_data": {
                        "currency": "jpy",
                        "unit_amount": 500,
                        "product_data": {"name": "Tea"},
                    },
                }
            ],
        }
    )
    assert session.amount_total == 1500 and session.currency == "jpy"


def test_payment_mode_completion(client, prices, fakestripe):
    session = payment_session(client, prices[0])
    mark = last_event(client)
    completed = fakestripe.complete_checkout(session.id)
    assert completed["status"] == "complete" and completed["payment_status"] == "paid"
    assert completed["url"] is None
    assert completed["customer_details"]["email"] == "buyer@example.com"
    session = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent.latest_charge"]}
    )
    intent = session.payment_intent
    assert intent.status == "succeeded" and intent.amount == 4000
    assert intent.metadata.to_dict() == {"order_id": "7", "user_id": "3"}
    assert intent.description == "Order 7"
    assert intent.latest_charge.metadata.to_dict() == {"order_id": "7", "user_id": "3"}
    assert session.metadata.to_dict() == {"order_id": "7"}
    assert session.client_reference_id == "order-7"
    # Stripe creates no customer in payment mode unless asked (customer_creation=always).
    assert session.customer is None
    events = list(reversed(client.v1.events.list(params={"ending_before": mark}).data))
    assert [e.type for e in events] == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    assert all(e["request"]["id"] is None for e in events)
    listed = client.v1.checkout.sessions.list(params={"payment_intent": intent.id})
    assert [s.id for s in listed] == [session.id]


def test_payment_mode_can_create_the_customer(client, prices, fakestripe):
    session = payment_session(client, prices[0], customer_creation="always")
    mark = last_event(client)
    fakestripe.complete_checkout(session.id)
    session = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["customer"]})
    assert session.customer.email == "buyer@example.com"
    assert (
        client.v1.payment_intents.retrieve(session.payment_intent).customer == session.customer.id
    )
    assert types_since(client, mark)[0] == "customer.created"


def test_decline_leaves_the_session_open(client, prices, fakestripe):
    session = payment_session(client, prices[0])
    mark = last_event(client)
    with pytest.raises(urllib.error.HTTPError) as info:
        fakestripe.complete_checkout(session.id, card="4000 0000 0000 9995")
    assert info.value.code == 402
    assert info.value.payload["error"]["decline_code"] == "insufficient_funds"
    again = client.v1.checkout.sessions.retrieve(session.id)
    assert again.status == "open" and again.payment_status == "unpaid"
    assert (
        client.v1.payment_intents.retrieve(again.payment_intent).status == "requires_payment_method"
    )
    fakestripe.complete_checkout(session.id)
    paid = client.v1.checkout.sessions.retrieve(session.id)
    assert paid.status == "complete" and paid.payment_intent == again.payment_intent
    assert types_since(client, mark) == [
        "payment_intent.created",
        "charge.failed",
        "payment_intent.payment_failed",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]


def test_expire(client, prices, fakestripe):
    session = payment_session(client, prices[0])
    mark = last_event(client)
    expired = client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)
    with pytest.raises(urllib.error.HTTPError):
        fakestripe.complete_checkout(session.id)
    assert types_since(client, mark) == ["checkout.session.expired"]


def test_subscription_mode_completion(client, prices, fakestripe):
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "success_url": "http://127.0.0.1/ok",
            "line_items": [{"price": prices[1].id, "quantity": 1}],
            "customer_email": "sub@example.com",
            "metadata": {"order_id": "9"},
            "subscription_data": {"metadata": {"order_id": "9", "plan": "basic"}},
        }
    )
    mark = last_event(client)
    fakestripe.complete_checkout(session.id)
    session = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["subscription", "invoice", "customer"]}
    )
    assert session.status == "complete" and session.payment_status == "paid"
    sub = session.subscription
    assert sub.status == "active" and sub.metadata.to_dict() == {"order_id": "9", "plan": "basic"}
    item = sub["items"].data[0]
    assert item.price.id == prices[1].id and item.current_period_end > item.current_period_start
    invoice = session.invoice
    assert invoice.status == "paid" and invoice.amount_paid == 900
    assert invoice.parent.subscription_details.subscription == sub.id
    assert invoice.billing_reason == "subscription_create"
    assert session.customer.email == "sub@example.com"
    assert session.metadata.to_dict() == {"order_id": "9"}
    payments = client.v1.invoices.retrieve(invoice.id, params={"expand": ["payments"]}).payments
    intent = client.v1.payment_intents.retrieve(payments.data[0].payment.payment_intent)
    assert intent.status == "succeeded" and intent.metadata.to_dict() == {}
    assert types_since(client, mark) == [
        "customer.created",
        "payment_method.attached",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice.updated",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
        "checkout.session.completed",
    ]
    updated = client.v1.events.list(params={"type": "customer.subscription.updated"}).data[0]
    assert updated.data.previous_attributes.to_dict() == {"status": "incomplete"}


def test_subscription_api(client, prices):
    customer = client.v1.customers.create(params={"email": "s@example.com"})
    with pytest.raises(stripe.InvalidRequestError, match="no attached payment source"):
        client.v1.subscriptions.create(
            params={"customer": customer.id, "items": [{"price": prices[1].id}]}
        )
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": prices[1].id, "quantity": 2}],
            "default_payment_method": "pm_card_visa",
            "metadata": {"a": "1"},
        }
    )
    assert sub.status == "active" and sub.latest_invoice
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    assert invoice.amount_paid == 1800 and invoice.status == "paid"
    other = client.v1.prices.create(
        params={
            "product": prices[1].product,
            "currency": "usd",
            "unit_amount": 1900,
            "recurring": {"interval": "year"},
        }
    )
    item_id = sub["items"].data[0].id
    changed = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item_id, "price": other.id}],
            "cancel_at_period_end": True,
            "metadata": {"b": "2"},
        },
    )
    assert changed["items"].data[0].price.id == other.id
    assert changed.cancel_at_period_end is True and changed.cancel_at
    assert changed.metadata.to_dict() == {"a": "1", "b": "2"}
    assert [s.id for s in client.v1.subscriptions.list(params={"price": other.id})] == [sub.id]
    canceled = client.v1.subscriptions.cancel(sub.id)
    assert canceled.status == "canceled" and canceled.ended_at
    assert client.v1.subscriptions.list(params={"customer": customer.id}).data == []
    assert [s.id for s in client.v1.subscriptions.list(params={"status": "canceled"})] == [sub.id]
    assert [s.id for s in client.v1.subscriptions.list(params={"status": "all"})] == [sub.id]
    found = client.v1.subscriptions.search(params={"query": "metadata['a']:'1'"})
    assert [s.id for s in found] == [sub.id]
    assert client.v1.events.list(params={"type": "customer.subscription.deleted"}).data


def test_incomplete_subscription_paid_later(client, prices):
    customer = client.v1.customers.create()
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": prices[1].id}],
            "payment_behavior": "default_incomplete",
        }
    )
    assert sub.status == "incomplete"
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    assert invoice.status == "open"
    with pytest.raises(stripe.CardError):
        client.v1.invoices.pay(invoice.id, params={"payment_method": "pm_card_chargeDeclined"})
    paid = client.v1.invoices.pay(invoice.id, params={"payment_method": "pm_card_visa"})
    assert paid.status == "paid"
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    with pytest.raises(stripe.InvalidRequestError, match="already paid"):
        client.v1.invoices.pay(invoice.id, params={"payment_method": "pm_card_visa"})
    assert [i.id for i in client.v1.invoices.list(params={"subscription": sub.id})] == [invoice.id]
    assert [
        i.id for i in client.v1.invoices.list(params={"customer": customer.id, "status": "paid"})
    ] == [invoice.id]
    lines = client.v1.invoices.line_items.list(invoice.id)
    assert lines.data[0].pricing.price_details.price == prices[1].id


def test_renewal(client, prices, fakestripe):
    customer = client.v1.customers.create()
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": prices[1].id}],
            "default_payment_method": "pm_card_visa",
        }
    )
    end = sub["items"].data[0].current_period_end
    renewed = fakestripe.renew_subscription(sub.id)
    assert renewed["items"]["data"][0]["current_period_start"] == end
    invoices = client.v1.invoices.list(params={"subscription": sub.id}).data
    assert [i.billing_reason for i in invoices] == ["subscription_cycle", "subscription_create"]
    assert invoices[0].status == "paid"


def test_subscription_items_and_invoice_payments_lists(client, prices):
    customer = client.v1.customers.create()
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": prices[1].id}],
            "default_payment_method": "pm_card_visa",
        }
    )
    items = client.v1.subscription_items.list(params={"subscription": sub.id})
    assert [i.id for i in items] == [sub["items"].data[0].id]
    payments = client.v1.invoice_payments.list(params={"invoice": sub.latest_invoice})
    assert payments.data[0].status == "paid"
    assert payments.data[0].payment.type == "payment_intent"


def test_legacy_version_renders_invoice_payment_fields(fakestripe, prices):
    legacy = stripe.StripeClient(
        "sk_test_legacy",
        base_addresses={"api": fakestripe.url},
        stripe_version="2024-06-20",
        max_network_retries=0,
    )
    customer = legacy.v1.customers.create()
    sub = legacy.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": prices[1].id}],
            "default_payment_method": "pm_card_visa",
        }
    )
    assert sub.current_period_end == sub["items"].data[0].current_period_end
    invoice = legacy.v1.invoices.retrieve(sub.latest_invoice)
    assert invoice.subscription == sub.id and invoice.paid is True
    assert invoice.payment_intent.startswith("pi_") and invoice.charge.startswith("ch_")
    # Events keep the version they were created at, whatever version reads them.
    event = legacy.v1.events.list(params={"type": "invoice.paid"}).data[0]
    assert "paid" not in event.data.object and event.api_version != "2024-06-20"


def test_cancel_at_period_end_ends_at_renewal(client, prices, fakestripe):
    customer = client.v1.customers.create()
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": prices[1].id}],
            "default_payment_method": "pm_card_visa",
            "cancel_at_period_end": True,
        }
    )
    assert sub.cancel_at == sub["items"].data[0].current_period_end
    ended = fakestripe.renew_subscription(sub.id)
    assert ended["status"] == "canceled"
    assert (
        client.v1.events.list(params={"limit": 1}).data[0].type == "customer.subscription.deleted"
    )


def test_overdue_sessions_expire_in_the_background():
    """The emulator's ticker expires a session past `expires_at` with no request at all."""
    from fakestripe.server import FakeStripeServer

    with FakeStripeServer() as server:
        client = stripe.StripeClient(
            "sk_test_fakestripe", base_addresses={"api": server.url}, max_network_retries=0
        )
        price = client.v1.prices.create(
            params={"currency": "usd", "unit_amount": 700, "product_data": {"name": "Cap"}}
        )
        session = client.v1.checkout.sessions.create(
            params={"mode": "payment", "line_items": [{"price": price.id, "quantity": 1}]}
        )
        # when the emulator's clock passes the session's expiry and nobody asks anything
        real_now = server.emulator.now
        server.emulator.now = lambda: real_now() + 86401
        time.sleep(1.5)
        server.emulator.now = real_now
        # then the ticker has expired it and said so
        assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
        assert client.v1.events.list(params={"limit": 1}).data[0].type == "checkout.session.expired"
