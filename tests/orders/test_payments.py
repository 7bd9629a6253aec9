"""Payments as records, through the emulator: stripe-python over HTTP to fakestripe, webhooks
delivered by the emulator to the live server with real signatures.

Only a payment that belongs to the order (a session it created, an invoice of its own
subscription) for its amount and currency pays it; anything else is recorded, flagged for
support (and visible in the admin with the Flagged filter), and changes nothing else.
"""

from __future__ import annotations

import hashlib
import importlib

import pytest
from django.apps import apps as django_apps
from django.conf import settings as django_settings
from django.test import Client
from djstripe.models import Customer

from billing import stripe_api
from billing.models import InboundEvent
from orders.models import Order, OrderPayment
from tests.admin import conftest as admin_fixtures
from tests.conftest import wait_for
from tests.orders.helpers import bought, buy, stripe_list, stripe_obj

S = Order.Status
P = OrderPayment.Status
F = OrderPayment.Flag
pytestmark = pytest.mark.django_db(transaction=True)
PAYMENTS = "/admin/orders/orderpayment/"
staff = admin_fixtures.staff  # the console's staff users, one per kind


def _price(*, amount: int, currency: str) -> str:
    product = stripe_api.create(object_type="product", params={"name": f"Other {amount}"})
    price = stripe_api.create(
        object_type="price",
        params={"product": product.id, "unit_amount": amount, "currency": currency},
    )
    return price.id


def _outside_session(*, price: str, quantity: int = 1, **params) -> str:
    """A session the shop did not create, e.g. from a Payment Link, whose payer may set
    ``client_reference_id`` to anything."""
    session = stripe_api.create(
        object_type="checkout.session",
        params={
            "mode": "payment",
            "line_items": [{"price": price, "quantity": quantity}],
            "success_url": "https://example.com/ok",
            **params,
        },
    )
    return session.id


def _paid(emulator, session_id: str) -> None:
    emulator.complete_checkout(session_id)
    assert emulator.wait_deliveries(15)


def _paid_order(shop, catalog, emulator) -> Order:
    """An order paid by its own session."""
    order = bought(shop, catalog["usd"])
    _paid(emulator, order.checkout_session_id)
    order.refresh_from_db()
    assert order.status == S.FULFILLED
    return order


def _flagged_in_admin(admin_client, session_id: str, flag: str) -> None:
    """Support sees it: in the Flagged filter, and under its own flag, not among unflagged."""
    for query in ("flagged=yes", f"flagged={flag}"):
        page = admin_client.get(f"{PAYMENTS}?{query}")
        assert page.status_code == 200
        assert session_id in page.content.decode(), query
    assert session_id not in admin_client.get(f"{PAYMENTS}?flagged=no").content.decode()


def _events_processed() -> None:
    stuck = InboundEvent.objects.exclude(status=InboundEvent.Status.PROCESSED)
    assert not stuck.exists(), list(stuck.values_list("type", "status", "last_error"))


@pytest.fixture
def shop(client, customer, catalog, live_webhook_endpoint, site_url):
    client.force_login(customer)
    return client


def test_a_cheap_session_naming_the_order_does_not_pay_it(shop, catalog, stripe_emulator,
                                                          admin_client):  # fmt: skip
    # given a $1,881.00 order (99 x $19.00)
    order = bought(shop, catalog["usd"], quantity=99)
    assert order.amount_total == 188100
    # when someone pays $0.50 on a session whose client_reference_id names the order
    cheap = _outside_session(
        price=_price(amount=50, currency="usd"), client_reference_id=order.public_id
    )
    _paid(stripe_emulator, cheap)
    # then the order still awaits payment, linked to its own session only
    order.refresh_from_db()
    assert order.status == S.AWAITING_PAYMENT and order.paid_at is None
    assert order.checkout_session_id != cheap and order.payment_intent_id is None
    # and the payment is on record, flagged, not applied
    payment = OrderPayment.objects.get(checkout_session_id=cheap)
    assert (payment.order, payment.status, payment.amount, payment.applied) == (
        order, P.SUCCEEDED, 50, False,
    )  # fmt: skip
    assert payment.flag == F.AMOUNT_MISMATCH
    assert "amount $0.50 but the order totals $1,881.00" in payment.flag_note
    assert "not paid through the order's own checkout" in payment.flag_note  # nor its session
    _flagged_in_admin(admin_client, cheap, F.AMOUNT_MISMATCH)
    # and the order's own session still pays it
    _paid(stripe_emulator, order.checkout_session_id)
    order.refresh_from_db()
    assert order.status == S.FULFILLED
    own = OrderPayment.objects.get(checkout_session_id=order.checkout_session_id)
    assert own.applied and own.flag == F.NONE and own.amount == 188100
    _events_processed()


def test_a_session_in_another_currency_does_not_pay_it(shop, catalog, stripe_emulator,
                                                       admin_client):  # fmt: skip
    order = bought(shop, catalog["usd"])  # $19.00
    euros = _outside_session(
        price=_price(amount=order.amount_total, currency="eur"),
        client_reference_id=order.public_id,
    )
    _paid(stripe_emulator, euros)
    order.refresh_from_db()
    assert order.status == S.AWAITING_PAYMENT
    payment = OrderPayment.objects.get(checkout_session_id=euros)
    assert (payment.currency, payment.amount, payment.status) == ("eur", 1900, P.SUCCEEDED)
    assert payment.flag == F.CURRENCY_MISMATCH and not payment.applied
    _flagged_in_admin(admin_client, euros, F.CURRENCY_MISMATCH)


@pytest.mark.parametrize("whose", ["another user's", "a payment link's"])
def test_a_session_that_is_not_the_orders_does_not_pay_it(
    shop, catalog, stripe_emulator, admin_client, make_user, whose
):
    order = bought(shop, catalog["usd"])
    if whose == "another user's":
        # the same amount and currency, linked to the order by someone else's metadata
        other = make_user()
        params = {"metadata": {"order_id": order.public_id, "user_id": str(other.pk)}}
    else:
        params = {"client_reference_id": order.public_id}
    foreign = _outside_session(price=catalog["usd"], **params)
    _paid(stripe_emulator, foreign)
    order.refresh_from_db()
    assert order.status == S.AWAITING_PAYMENT
    assert order.checkout_session_id != foreign
    payment = OrderPayment.objects.get(checkout_session_id=foreign)
    assert payment.order == order and payment.amount == order.amount_total
    assert payment.flag == F.UNEXPECTED and not payment.applied
    if whose == "another user's":
        assert "is not the order's user" in payment.flag_note
    _flagged_in_admin(admin_client, foreign, F.UNEXPECTED)
    # the order's history says so, for support
    assert order.history.filter(note__contains=f"payment {foreign} flagged").count() == 1


def test_a_second_payment_is_recorded_and_the_first_keeps_its_links(
    shop, catalog, stripe_emulator, admin_client, customer
):
    order = _paid_order(shop, catalog, stripe_emulator)  # paid by its own session
    first_links = (order.checkout_session_id, order.payment_intent_id, order.customer_id)
    # when the customer pays for it again through another session that links to it
    second = _outside_session(
        price=catalog["usd"],
        customer=order.customer_id,
        metadata={"order_id": order.public_id, "user_id": str(customer.pk)},
    )
    _paid(stripe_emulator, second)
    # then the order was paid once, keeps the first payment's links, and the second is flagged
    order.refresh_from_db()
    assert order.status == S.FULFILLED
    assert (order.checkout_session_id, order.payment_intent_id, order.customer_id) == first_links
    assert order.history.filter(to_status=S.PAID).count() == 1
    payment = OrderPayment.objects.get(checkout_session_id=second)
    assert payment.flag == F.SECOND_PAYMENT and not payment.applied
    assert payment.payment_intent_id and payment.payment_intent_id != order.payment_intent_id
    assert list(order.payments.filter(applied=True).values_list("checkout_session_id", flat=True)) == [
        order.checkout_session_id
    ]  # fmt: skip
    _flagged_in_admin(admin_client, second, F.SECOND_PAYMENT)
    # and the order's admin page counts it
    page = admin_client.get(f"/admin/orders/order/{order.public_id}/change/").content.decode()
    assert 'id="flagged-payments"' in page and "1 open" in page and second in page


def test_support_marks_a_flagged_payment_resolved(shop, catalog, stripe_emulator, staff):
    order = bought(shop, catalog["usd"])
    cheap = _outside_session(
        price=_price(amount=50, currency="usd"), client_reference_id=order.public_id
    )
    _paid(stripe_emulator, cheap)
    payment = OrderPayment.objects.get(checkout_session_id=cheap)
    form = {"action": "mark_resolved", "_selected_action": [payment.pk]}
    # Support may look but not resolve: the action is not offered and does nothing
    support = staff.client("support")
    page = support.get(f"{PAYMENTS}?flagged=yes")
    assert page.status_code == 200 and cheap in page.content.decode()
    assert 'value="mark_resolved"' not in page.content.decode()
    support.post(PAYMENTS, form)
    payment.refresh_from_db()
    assert payment.resolved_at is None
    # Billing admin resolves it: who and when, in the order's history too
    billing = staff.client("billing")
    assert 'value="mark_resolved"' in billing.get(PAYMENTS).content.decode()
    # the action leads to a page asking how it was handled; the note makes it resolved
    to_confirm = billing.post(PAYMENTS, form)
    assert to_confirm.status_code == 302
    payment.refresh_from_db()
    assert payment.resolved_at is None
    note = "explained to the customer"
    assert (
        billing.post(to_confirm["Location"], {"ids": str(payment.pk), "note": note}).status_code
        == 302
    )
    payment.refresh_from_db()
    assert payment.resolved_at is not None and payment.resolved_by == staff.billing
    assert cheap not in billing.get(f"{PAYMENTS}?flagged=yes").content.decode()
    assert cheap in billing.get(f"{PAYMENTS}?flagged=resolved").content.decode()
    assert order.history.filter(note__contains=note, actor=staff.billing).exists()
    # searching by the number the customer reads out finds it
    assert cheap in billing.get(f"{PAYMENTS}?q={order.number}").content.decode()


# --- A payment that settles later (ACH Direct Debit) -------------------------------------------


def test_bank_debit_settles_after_the_session_completes_and_pays_once(
    shop, catalog, stripe_emulator
):
    order = bought(shop, catalog["usd"])
    session_id = order.checkout_session_id
    # when the customer pays by bank debit: the session completes, unpaid, the debit processing
    stripe_emulator.complete_checkout_bank(session_id, settle_after=120)
    assert stripe_emulator.wait_deliveries(15)
    order.refresh_from_db()
    assert order.status == S.PAYMENT_PROCESSING and not order.is_payable
    payment = OrderPayment.objects.get(checkout_session_id=session_id)
    assert payment.status == P.PROCESSING and not payment.applied
    page = shop.get(f"/orders/{order.public_id}/").content.decode()
    assert 'id="payment-processing"' in page and 'id="pay-again"' not in page
    # and while it settles, neither Pay again nor Buy starts another session or order
    response = shop.post(f"/orders/{order.public_id}/pay/")
    assert response.status_code == 303 and response["Location"] == f"/orders/{order.public_id}/"
    response = buy(shop, catalog["usd"])
    assert response.status_code == 303 and response["Location"] == f"/orders/{order.public_id}/"
    page = shop.get(response["Location"]).content.decode()
    assert "still being processed by your bank" in page
    assert [s["id"] for s in stripe_list("checkout.session")] == [session_id]
    assert Order.objects.count() == 1
    # when the debit settles
    stripe_emulator.settle_payment(payment.payment_intent_id)
    assert stripe_emulator.wait_deliveries(15)
    # then the order is paid and fulfilled, once
    order.refresh_from_db()
    assert order.status == S.FULFILLED
    assert order.history.filter(to_status=S.PAID).count() == 1
    assert order.history.filter(to_status=S.PAYMENT_PROCESSING).count() == 1
    payment.refresh_from_db()
    assert (payment.status, payment.applied, payment.flag) == (P.SUCCEEDED, True, F.NONE)
    assert stripe_list("event", type="checkout.session.async_payment_succeeded")
    _events_processed()


def test_bank_debit_that_fails_leaves_the_order_payable_again(shop, catalog, stripe_emulator):
    order = bought(shop, catalog["usd"])
    first_session = order.checkout_session_id
    # a debit the bank returns, settling on the emulator's own timer
    stripe_emulator.complete_checkout_bank(first_session, bank_account="000111111116",
                                           settle_after=1)  # fmt: skip
    wait_for(lambda: Order.objects.get(pk=order.pk).status == S.PAYMENT_FAILED, timeout=30)
    assert stripe_emulator.wait_deliveries(15)
    order.refresh_from_db()
    assert order.status == S.PAYMENT_FAILED and order.is_payable and order.paid_at is None
    payment = OrderPayment.objects.get(checkout_session_id=first_session)
    assert payment.status == P.FAILED and not payment.applied
    assert stripe_list("event", type="checkout.session.async_payment_failed")
    # paying again now makes a new session, which pays the order
    response = shop.post(f"/orders/{order.public_id}/pay/")
    order.refresh_from_db()
    assert order.checkout_session_id != first_session
    assert response["Location"] == stripe_obj("checkout.session", order.checkout_session_id)["url"]
    _paid(stripe_emulator, order.checkout_session_id)
    order.refresh_from_db()
    assert order.status == S.FULFILLED
    assert order.history.filter(to_status=S.PAID).count() == 1
    _events_processed()


def test_pay_again_before_the_webhook_sees_the_debit_processing(
    client, customer, catalog, stripe_emulator, webhook_endpoint
):
    """No webhook has arrived (the endpoint is unreachable): the order still says awaiting
    payment, but its session completed unpaid. Pay again looks and starts nothing."""
    client.force_login(customer)
    order = bought(client, catalog["usd"])
    stripe_emulator.complete_checkout_bank(order.checkout_session_id, settle_after=120)
    response = client.post(f"/orders/{order.public_id}/pay/")
    assert response["Location"] == f"/orders/{order.public_id}/"
    assert "still being processed" in client.get(response["Location"]).content.decode()
    order.refresh_from_db()
    assert order.status == S.PAYMENT_PROCESSING
    assert len(stripe_list("checkout.session")) == 1


# --- The Stripe customer, and idempotency keys ---------------------------------------------------


def test_a_customer_deleted_in_stripe_is_replaced_on_the_next_checkout(
    client, customer, catalog, stripe_emulator
):
    client.force_login(customer)
    first = bought(client, catalog["usd"])
    gone = first.customer_id
    # given the user's Stripe customer was deleted in Stripe, and we were not told
    stripe_api.delete(object_type="customer", stripe_id=gone)
    # when they buy again
    response = buy(client, catalog["eur"])
    # then checkout goes on with a new customer, and the old one is marked deleted, unlinked
    assert response.status_code == 303, response.content
    order = Order.objects.order_by("-pk").first()
    assert order.pk != first.pk and order.customer_id and order.customer_id != gone
    session = stripe_obj("checkout.session", order.checkout_session_id)
    assert response["Location"] == session["url"] and session["customer"] == order.customer_id
    assert stripe_obj("customer", order.customer_id)["metadata"]["user_id"] == str(customer.pk)
    old = Customer.objects.get(id=gone)
    assert old.subscriber is None and old.date_purged is not None
    assert Customer.objects.get(id=order.customer_id).subscriber == customer
    # and the next checkout uses the new customer, without another replacement
    buy(client, catalog["jpy"])
    assert Order.objects.order_by("-pk").first().customer_id == order.customer_id
    assert len([c for c in stripe_list("customer") if not c.get("deleted")]) == 1


def test_idempotency_keys_are_per_installation(settings, stripe_emulator):
    key = stripe_api.idempotency_key
    assert key("customer", 1, namespace="a") == key("customer", 1, namespace="a")
    assert key("customer", 1, namespace="a") != key("customer", 1, namespace="b")
    # the default namespace is the setting, whose default is a short hash of SECRET_KEY
    expected = hashlib.sha256(f"stripe-idempotency:{django_settings.SECRET_KEY}".encode())
    default = settings.STRIPE_IDEMPOTENCY_NAMESPACE
    assert default == expected.hexdigest()[:12]
    assert key("customer", 1) == key("customer", 1, namespace=expected.hexdigest()[:12])
    # two installations sharing one Stripe account: their user 1 gets a customer each
    made = {}
    for namespace in ("shop-a", "shop-b", "shop-a"):
        settings.STRIPE_IDEMPOTENCY_NAMESPACE = namespace
        made.setdefault(namespace, set()).add(
            stripe_api.create(
                object_type="customer",
                params={"metadata": {"user_id": "1"}},
                idempotency_key=key("customer", 1),
            ).id
        )
    assert len(made["shop-a"]) == 1 and made["shop-a"] != made["shop-b"]


def test_new_payment_pages_answer_for_every_staff_user(shop, catalog, stripe_emulator, staff):
    order = bought(shop, catalog["usd"])
    payment = OrderPayment.objects.get(order=order)
    for who, expected in (("superuser", 200), ("support", 200), ("billing", 200),
                          ("nobody", 403)):  # fmt: skip
        client: Client = staff.client(who)
        for url in (PAYMENTS, f"{PAYMENTS}?flagged=yes", f"{PAYMENTS}?flagged=unexpected",
                    f"{PAYMENTS}{payment.pk}/change/", f"{PAYMENTS}?q={order.number}"):  # fmt: skip
            assert client.get(url).status_code == expected, (who, url)


def test_an_invoice_of_a_subscription_that_is_not_the_orders_does_not_pay_it(
    shop, catalog, stripe_emulator, admin_client, customer
):
    # given an unpaid subscription order
    order = bought(shop, catalog["monthly"])
    assert order.mode == Order.Mode.SUBSCRIPTION
    # when a subscription the order did not start (another Stripe customer's), carrying the
    # order's link metadata, has its first invoice paid
    stranger = stripe_api.create(object_type="customer", params={"email": "x@example.com"})
    subscription = stripe_api.create(
        object_type="subscription",
        params={
            "customer": stranger.id,
            "items": [{"price": catalog["monthly"]}],
            "default_payment_method": "pm_card_visa",
            "metadata": {"order_id": order.public_id, "user_id": str(customer.pk)},
        },
    )
    assert stripe_emulator.wait_deliveries(15)
    # then the order is not paid and the invoice is recorded, flagged
    order.refresh_from_db()
    assert order.status == S.AWAITING_PAYMENT and order.subscription_id is None
    payment = OrderPayment.objects.get(invoice_id=subscription.latest_invoice)
    assert payment.kind == OrderPayment.Kind.INVOICE and payment.status == P.SUCCEEDED
    assert payment.flag == F.UNEXPECTED and not payment.applied
    _flagged_in_admin(admin_client, subscription.latest_invoice, F.UNEXPECTED)
    # and the order's own checkout still pays it, once, its first invoice on the same record
    _paid(stripe_emulator, order.checkout_session_id)
    order.refresh_from_db()
    assert order.status == S.FULFILLED and order.subscription_id != subscription.id
    own = OrderPayment.objects.get(checkout_session_id=order.checkout_session_id)
    assert own.applied and own.invoice_id and own.subscription_id == order.subscription_id
    assert order.payments.count() == 2
    _events_processed()


def _intent_by_hand(order: Order, customer, *, amount: int | None = None) -> str:
    """A payment intent made through the API (or the Dashboard), naming the order."""
    intent = stripe_api.create(
        object_type="payment_intent",
        params={
            "amount": amount or order.amount_total,
            "currency": order.currency,
            "payment_method": "pm_card_visa",
            "confirm": True,
            "metadata": {"order_id": order.public_id, "user_id": str(customer.pk)},
        },
    )
    assert intent.status == "succeeded"
    return intent.id


def _outcome(event_type: str, object_id: str) -> str:
    return InboundEvent.objects.get(type=event_type, object_id=object_id).outcome


def test_a_payment_intent_made_by_hand_is_recorded_and_flagged(
    shop, catalog, stripe_emulator, admin_client, customer
):
    order = _paid_order(shop, catalog, stripe_emulator)  # paid by its own session
    own_intent = order.payment_intent_id
    # when someone charges the customer again by hand, naming the order
    by_hand = _intent_by_hand(order, customer)
    assert stripe_emulator.wait_deliveries(15)
    # then the payment is on record, flagged, not applied; the order is as it was
    payment = OrderPayment.objects.get(payment_intent_id=by_hand)
    assert (payment.order, payment.kind, payment.status, payment.amount, payment.applied) == (
        order, OrderPayment.Kind.PAYMENT_INTENT, P.SUCCEEDED, order.amount_total, False,
    )  # fmt: skip
    assert payment.flag == F.SECOND_PAYMENT
    assert "not paid through the order's own checkout" in payment.flag_note
    order.refresh_from_db()
    assert (order.status, order.payment_intent_id) == (S.FULFILLED, own_intent)
    _flagged_in_admin(admin_client, by_hand, F.SECOND_PAYMENT)
    # and the order's own intent stays recorded with its session, not as a payment of its own
    assert OrderPayment.objects.filter(kind=OrderPayment.Kind.PAYMENT_INTENT).count() == 1
    # (its event came before the session's here: it was left to the session, which has it)
    said = _outcome("payment_intent.succeeded", own_intent)
    assert "left to the session's events" in said or "recorded with Checkout Session" in said
    assert OrderPayment.objects.get(payment_intent_id=own_intent).applied
    _events_processed()


def test_a_payment_intent_while_the_orders_session_is_open_is_left_to_the_session(
    shop, catalog, stripe_emulator, customer
):
    # given an order whose own session is open (the customer has not paid yet)
    order = bought(shop, catalog["usd"])
    # when a payment intent naming it succeeds (it might be the session's: Stripe sends the
    # intent's event before the session's as often as after)
    by_hand = _intent_by_hand(order, customer)
    assert stripe_emulator.wait_deliveries(15)
    # then nothing is recorded for it, and the event says why
    assert not OrderPayment.objects.filter(payment_intent_id=by_hand).exists()
    assert "left to the session's events" in _outcome("payment_intent.succeeded", by_hand)
    order.refresh_from_db()
    assert order.status == S.AWAITING_PAYMENT
    # and the session, once paid, pays the order with its own intent
    _paid(stripe_emulator, order.checkout_session_id)
    order.refresh_from_db()
    assert order.status == S.FULFILLED and order.payment_intent_id != by_hand
    _events_processed()


def test_the_payments_migration_records_the_orders_a_shop_already_has(
    shop, catalog, stripe_emulator
):
    # given a shop with a paid order and an unpaid one, from before payments were recorded
    paid = _paid_order(shop, catalog, stripe_emulator)
    unpaid = bought(shop, catalog["usd"], quantity=2)
    assert paid.payment_intent_id
    OrderPayment.objects.all().delete()  # as before payments were recorded
    # when the migration that adds payments runs its data step on it (the suite builds its
    # tables from the models, so the step is called as the migration calls it)
    migration = importlib.import_module("orders.migrations.0005_order_payments")
    migration.backfill(django_apps, None)
    # then each order has its session's payment, the paid one applied with its intent
    payment = OrderPayment.objects.get(order=paid)
    assert (payment.checkout_session_id, payment.payment_intent_id) == (
        paid.checkout_session_id, paid.payment_intent_id,
    )  # fmt: skip
    assert (payment.status, payment.applied, payment.amount, payment.source) == (
        P.SUCCEEDED, True, paid.amount_total, "migration",
    )  # fmt: skip
    waiting = OrderPayment.objects.get(order=unpaid)
    assert (waiting.checkout_session_id, waiting.status, waiting.applied, waiting.amount) == (
        unpaid.checkout_session_id, P.PENDING, False, unpaid.amount_total,
    )  # fmt: skip
    # and the unpaid order's session still pays it, once
    _paid(stripe_emulator, unpaid.checkout_session_id)
    unpaid.refresh_from_db()
    assert unpaid.status == S.FULFILLED
    assert list(OrderPayment.objects.filter(order=unpaid).values_list("applied", flat=True)) == [
        True
    ]
