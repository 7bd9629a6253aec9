"""Checkout through the real views, with Stripe calls going over HTTP to fakestripe."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from billing import stripe_api
from billing.models import InboundEvent
from orders.models import Order
from tests.orders.helpers import bought, buy, stripe_list, stripe_obj

S = Order.Status
pytestmark = pytest.mark.django_db


def test_buy_creates_an_order_and_a_linked_checkout_session(client, customer, catalog):
    client.force_login(customer)
    # when the customer buys two of the USD ebook
    response = buy(client, catalog["usd"], quantity=2)
    # then they are sent to Stripe Checkout with a 303
    assert response.status_code == 303
    order = Order.objects.get()
    session = stripe_obj("checkout.session", order.checkout_session_id)
    assert response["Location"] == session["url"]
    # and the session links back to the order and user, which Stripe shows on the session
    assert session["metadata"] == {"order_id": order.public_id, "user_id": str(customer.pk)}
    assert session["client_reference_id"] == order.public_id
    assert session["mode"] == "payment"
    assert session["amount_total"] == order.amount_total == 3800
    assert session["success_url"].endswith(
        f"/orders/{order.public_id}/return/?session_id={{CHECKOUT_SESSION_ID}}"
    )
    # and one Stripe customer for the user, tied to it by metadata and the subscriber link
    customer_obj = stripe_obj("customer", session["customer"])
    assert customer_obj["metadata"]["user_id"] == str(customer.pk)
    assert order.customer.subscriber == customer
    item = order.items.get()
    assert (item.price_id, item.quantity, item.unit_amount) == (catalog["usd"], 2, 1900)
    assert list(order.history.values_list("to_status", flat=True)) == [S.AWAITING_PAYMENT]


def test_payment_intent_and_subscription_carry_the_link_too(
    client, customer, catalog, stripe_emulator
):
    """Stripe does not copy session metadata onward; the product does, through *_data."""
    client.force_login(customer)
    one_time = bought(client, catalog["eur"])
    stripe_emulator.complete_checkout(one_time.checkout_session_id)
    session = stripe_obj(
        "checkout.session", one_time.checkout_session_id, ["payment_intent.latest_charge"]
    )
    assert session["payment_intent"]["metadata"]["order_id"] == one_time.public_id
    assert session["payment_intent"]["latest_charge"]["metadata"]["order_id"] == one_time.public_id

    recurring = bought(client, catalog["monthly"])
    assert recurring.mode == Order.Mode.SUBSCRIPTION
    stripe_emulator.complete_checkout(recurring.checkout_session_id)
    session = stripe_obj("checkout.session", recurring.checkout_session_id, ["subscription"])
    assert session["subscription"]["metadata"] == {
        "order_id": recurring.public_id, "user_id": str(customer.pk),
    }  # fmt: skip


def test_double_submit_makes_one_order_and_one_session(client, customer, catalog):
    client.force_login(customer)
    first = buy(client, catalog["usd"], token="same-form-" * 3)
    second = buy(client, catalog["usd"], token="same-form-" * 3)
    assert first.status_code == second.status_code == 303
    assert first["Location"] == second["Location"]
    assert Order.objects.count() == 1
    assert len(stripe_list("checkout.session")) == 1
    # a second customer only ever has one Stripe customer too
    assert len(stripe_list("customer")) == 1


@pytest.mark.django_db(transaction=True)
def test_double_click_at_the_same_moment_makes_one_order_and_one_session(customer, catalog):
    # given two submits of one rendered form, racing in two threads
    barrier = threading.Barrier(2)
    results: list = []

    def submit():
        try:
            c = Client()
            c.force_login(customer)
            barrier.wait()
            results.append(buy(c, catalog["jpy"], token="double-click-token-1"))
        except Exception as exc:  # pragma: no cover - reported below
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # then both land on the same Checkout page; there is one order and one session
    assert [getattr(r, "status_code", r) for r in results] == [303, 303]
    assert results[0]["Location"] == results[1]["Location"]
    assert Order.objects.count() == 1
    assert len(stripe_list("checkout.session")) == 1


def test_another_users_order_is_404(client, make_user, catalog):
    owner, other = make_user(), make_user()
    client.force_login(owner)
    order = bought(client, catalog["usd"])
    client.force_login(other)
    base = f"/orders/{order.public_id}"
    for url in (
        f"{base}/",
        f"{base}/return/?session_id={order.checkout_session_id}",
        f"{base}/cancel/",
    ):
        assert client.get(url).status_code == 404, url
    for url in (f"{base}/pay/", f"{base}/subscription/cancel/"):
        assert client.post(url).status_code == 404, url
    assert order.public_id not in client.get("/orders/").content.decode()


def test_pages_need_a_login(client, catalog):
    for url in ("/orders/", "/orders/ord_x/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    response = buy(client, catalog["usd"])
    assert response.status_code == 302 and Order.objects.count() == 0


def test_buy_needs_the_csrf_token(customer, catalog):
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)
    assert buy(client, catalog["usd"]).status_code == 403
    assert Order.objects.count() == 0


def test_buy_refuses_an_inactive_price(client, customer, catalog):
    client.force_login(customer)
    stripe_api.update(object_type="price", stripe_id=catalog["usd"], params={"active": False})
    from orders.services import catalog_sync

    catalog_sync()
    response = buy(client, catalog["usd"])
    assert response.status_code == 303 and response["Location"] == "/"
    assert Order.objects.count() == 0


def test_return_page_fulfils_when_no_webhook_came(client, customer, catalog, stripe_emulator):
    client.force_login(customer)
    order = bought(client, catalog["usd"])
    # before paying, the return page says it is waiting and refreshes
    page = client.get(f"/orders/{order.public_id}/return/?session_id={order.checkout_session_id}")
    assert b"Confirming your payment" in page.content and b'http-equiv="refresh"' in page.content
    # when the customer pays and comes back before any webhook
    stripe_emulator.complete_checkout(order.checkout_session_id)
    page = client.get(f"/orders/{order.public_id}/return/?session_id={order.checkout_session_id}")
    # then the page confirms it, and the order is paid and fulfilled with its links
    assert b"your payment is confirmed" in page.content
    order.refresh_from_db()
    assert order.status == S.FULFILLED
    assert order.payment_intent_id and order.payment_intent_id.startswith("pi_")
    history = list(order.history.values_list("to_status", "source"))
    assert history[1:] == [(S.PAID, "return page"), (S.FULFILLED, "return page")]
    # reloading fetches nothing more from Stripe
    calls = stripe_api.call_counts().get("checkout.session.retrieve", 0)
    client.get(f"/orders/{order.public_id}/return/?session_id={order.checkout_session_id}")
    assert stripe_api.call_counts().get("checkout.session.retrieve", 0) == calls


def test_return_page_updates_itself_until_the_receipt_is_there(
    client, customer, catalog, stripe_emulator
):
    client.force_login(customer)
    order = bought(client, catalog["usd"])
    stripe_emulator.complete_checkout(order.checkout_session_id)
    url = f"/orders/{order.public_id}/return/?session_id={order.checkout_session_id}"
    client.get(url)  # confirmed on return, before any webhook mirrored the charge
    from djstripe.models import Charge

    order.refresh_from_db()
    Charge.objects.filter(payment_intent_id=order.payment_intent_id).delete()
    page = client.get(url).content.decode()
    assert 'id="receipt-pending"' in page and "updates by itself" in page
    assert 'http-equiv="refresh"' in page and "try=1" in page
    # it stops after a while and says where the receipt will be
    page = client.get(url + "&try=40").content.decode()
    assert 'http-equiv="refresh"' not in page and "your order's page" in page
    # once the charge is mirrored, the receipt is linked and the page stays still
    from billing import mirror

    mirror.object_sync(object_type="payment_intent", stripe_id=order.payment_intent_id)
    charge_id = stripe_api.retrieve(
        object_type="payment_intent", stripe_id=order.payment_intent_id
    ).latest_charge
    mirror.object_sync(object_type="charge", stripe_id=charge_id)
    page = client.get(url).content.decode()
    assert 'id="receipt"' in page and 'http-equiv="refresh"' not in page


def test_return_page_ignores_a_session_id_that_is_not_the_orders(
    client, customer, catalog, stripe_emulator
):
    client.force_login(customer)
    order = bought(client, catalog["usd"])
    other = bought(client, catalog["eur"])
    stripe_emulator.complete_checkout(other.checkout_session_id)
    client.get(f"/orders/{order.public_id}/return/?session_id={other.checkout_session_id}")
    order.refresh_from_db()
    assert order.status == S.AWAITING_PAYMENT


@pytest.mark.django_db(transaction=True)
def test_webhook_fulfils_once_despite_duplicate_deliveries(
    client, customer, catalog, stripe_emulator, live_webhook_endpoint, site_url
):
    stripe_emulator.set_faults(duplicate_deliveries=3)
    client.force_login(customer)
    order = bought(client, catalog["usd"])
    stripe_emulator.complete_checkout(order.checkout_session_id)
    assert stripe_emulator.wait_deliveries(15)
    order.refresh_from_db()
    assert order.status == S.FULFILLED
    assert order.history.filter(to_status=S.PAID).count() == 1
    assert order.history.filter(to_status=S.FULFILLED).count() == 1
    assert order.history.get(to_status=S.PAID).event_id.startswith("evt_")


def test_cancel_then_pay_again_reuses_the_open_session(client, customer, catalog, stripe_emulator):
    client.force_login(customer)
    order = bought(client, catalog["usd"])
    first_url = stripe_obj("checkout.session", order.checkout_session_id)["url"]
    # when the customer cancels on Checkout and comes back
    page = client.get(f"/orders/{order.public_id}/cancel/")
    assert b"Payment not completed" in page.content and b"Awaiting payment" in page.content
    # then paying again goes to the same open session
    response = client.post(f"/orders/{order.public_id}/pay/")
    assert response.status_code == 303 and response["Location"] == first_url
    assert len(stripe_list("checkout.session")) == 1
    stripe_emulator.complete_checkout(order.checkout_session_id)
    client.get(f"/orders/{order.public_id}/return/?session_id={order.checkout_session_id}")
    order.refresh_from_db()
    assert order.status == S.FULFILLED
    # and an order that is paid is not payable again
    response = client.post(f"/orders/{order.public_id}/pay/")
    assert response["Location"] == f"/orders/{order.public_id}/"


@pytest.mark.django_db(transaction=True)
def test_expired_session_is_replaced_when_paying_again(
    client, customer, catalog, stripe_emulator, live_webhook_endpoint, site_url
):
    client.force_login(customer)
    order = bought(client, catalog["usd"])
    old_session = order.checkout_session_id
    # given the session expired and the webhook said so
    stripe_api.action(object_type="checkout.session", name="expire", stripe_id=old_session)
    assert stripe_emulator.wait_deliveries(15)
    order.refresh_from_db()
    assert order.status == S.EXPIRED
    # when the customer pays again
    response = client.post(f"/orders/{order.public_id}/pay/")
    # then a new session (a new attempt, so a new idempotency key) serves the same order
    order.refresh_from_db()
    assert order.checkout_session_id != old_session
    assert order.checkout_attempt == 2 and order.status == S.AWAITING_PAYMENT
    new_session = stripe_obj("checkout.session", order.checkout_session_id)
    assert response["Location"] == new_session["url"]
    assert new_session["metadata"]["order_id"] == order.public_id
    stripe_emulator.complete_checkout(order.checkout_session_id)
    assert stripe_emulator.wait_deliveries(15)
    order.refresh_from_db()
    assert order.status == S.FULFILLED
    statuses = list(order.history.values_list("to_status", flat=True))
    assert statuses == [S.AWAITING_PAYMENT, S.EXPIRED, S.AWAITING_PAYMENT, S.PAID, S.FULFILLED]


def test_declined_card_leaves_the_order_payable(client, customer, catalog, stripe_emulator):
    client.force_login(customer)
    order = bought(client, catalog["usd"])
    with pytest.raises(Exception) as declined:
        stripe_emulator.complete_checkout(order.checkout_session_id, card="4000000000000002")
    assert declined.value.code == 402
    client.get(f"/orders/{order.public_id}/return/?session_id={order.checkout_session_id}")
    order.refresh_from_db()
    assert order.status == S.AWAITING_PAYMENT and order.is_payable


@pytest.mark.django_db(transaction=True)
def test_async_payment_failed_and_stale_session_events(
    client, customer, catalog, deliver_event, stripe_emulator
):
    client.force_login(customer)
    order = bought(client, catalog["usd"])
    session_id = order.checkout_session_id
    event = {
        "id": "evt_async_failed_1", "object": "event", "type": "checkout.session.async_payment_failed",
        "api_version": "2026-08-26.dahlia", "created": 1_800_000_000, "livemode": False,
        "data": {"object": {"id": session_id, "object": "checkout.session"}},
        "request": {"id": None, "idempotency_key": None},
    }  # fmt: skip
    # an "async payment failed" event about a session that is still open (forged, or from
    # another account's test) is judged by the session as Stripe has it: nothing failed
    assert deliver_event(event).status_code == 200
    order.refresh_from_db()
    assert order.status == S.AWAITING_PAYMENT
    assert not order.history.filter(to_status=S.PAYMENT_FAILED).exists()
    assert "awaiting payment" in InboundEvent.objects.get(id="evt_async_failed_1").outcome
    # the session expires; paying again replaces it; a late event about the old one changes
    # nothing
    stripe_api.action(object_type="checkout.session", name="expire", stripe_id=session_id)
    client.post(f"/orders/{order.public_id}/pay/")
    order.refresh_from_db()
    assert order.status == S.AWAITING_PAYMENT and order.checkout_session_id != session_id
    late = {**event, "id": "evt_expired_late", "type": "checkout.session.expired"}
    deliver_event(late)
    order.refresh_from_db()
    assert order.status == S.AWAITING_PAYMENT
    assert "not its current session" in InboundEvent.objects.get(id="evt_expired_late").outcome


@pytest.mark.django_db(transaction=True)
def test_unlinked_objects_are_recorded_not_failed(deliver_event, stripe_emulator, catalog):
    # a session made elsewhere (no order metadata), paid
    session = stripe_api.create(
        object_type="checkout.session",
        params={
            "mode": "payment",
            "line_items": [{"price": catalog["usd"], "quantity": 1}],
            "success_url": "https://example.com/ok",
        },
    )
    stripe_emulator.complete_checkout(session.id)
    event = stripe_list("event", type="checkout.session.completed")[0]
    assert deliver_event(event).status_code == 200
    stored = InboundEvent.objects.get(id=event["id"])
    assert stored.status == InboundEvent.Status.PROCESSED
    assert "no order link" in stored.outcome


@pytest.mark.django_db(transaction=True)
def test_refunds_partial_then_full(
    client, customer, catalog, stripe_emulator, live_webhook_endpoint, site_url
):
    client.force_login(customer)
    order = bought(client, catalog["usd"], quantity=2)
    stripe_emulator.complete_checkout(order.checkout_session_id)
    assert stripe_emulator.wait_deliveries(15)
    order.refresh_from_db()
    assert order.status == S.FULFILLED
    # when support refunds part, then the rest
    stripe_api.create(
        object_type="refund", params={"payment_intent": order.payment_intent_id, "amount": 1000}
    )
    assert stripe_emulator.wait_deliveries(15)
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (S.PARTIALLY_REFUNDED, 1000)
    stripe_api.create(object_type="refund", params={"payment_intent": order.payment_intent_id})
    assert stripe_emulator.wait_deliveries(15)
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (S.REFUNDED, 3800)
    page = client.get(f"/orders/{order.public_id}/").content.decode()
    assert "Refunded" in page and "$38.00" in page


@pytest.mark.django_db(transaction=True)
def test_subscription_purchase_renewal_and_cancellation(
    client, customer, catalog, stripe_emulator, live_webhook_endpoint, site_url
):
    client.force_login(customer)
    order = bought(client, catalog["monthly"])
    stripe_emulator.complete_checkout(order.checkout_session_id)
    assert stripe_emulator.wait_deliveries(15)
    order.refresh_from_db()
    assert order.status == S.FULFILLED and order.subscription_id
    assert order.history.filter(to_status=S.PAID).count() == 1
    page = client.get(f"/orders/{order.public_id}/").content.decode()
    assert 'id="subscription-status">Active<' in page and "Renews on" in page

    # a renewal is recorded on the order
    stripe_emulator.renew_subscription(order.subscription_id)
    assert stripe_emulator.wait_deliveries(15)
    assert order.history.filter(note__startswith="renewal invoice").count() == 1

    # cancel at period end: Stripe is told, the page shows Stripe's answer
    response = client.post(f"/orders/{order.public_id}/subscription/cancel/")
    assert response.status_code == 303
    assert stripe_obj("subscription", order.subscription_id)["cancel_at_period_end"] is True
    page = client.get(f"/orders/{order.public_id}/").content.decode()
    assert 'id="subscription-ends"' in page and 'id="cancel-subscription"' not in page

    # when the subscription ends, the order is canceled
    stripe_api.action(object_type="subscription", name="cancel", stripe_id=order.subscription_id)
    assert stripe_emulator.wait_deliveries(15)
    order.refresh_from_db()
    assert order.status == S.CANCELED


def test_catalog_shows_prices_per_currency(client, catalog, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        page = client.get("/").content.decode()
    assert "$19.00" in page and "¥1,500" in page and "€3.50" in page and "$9.00" in page
    assert "per month" in page and "Log in to buy" in page


def test_order_list_query_count_does_not_grow(
    client, customer, catalog, django_assert_max_num_queries
):
    client.force_login(customer)
    for price in ("usd", "jpy", "eur", "monthly"):
        bought(client, catalog[price])
    with django_assert_max_num_queries(5):
        page = client.get("/orders/")
    assert page.content.decode().count('class="order"') == 4


def test_order_admin(admin_client, customer, catalog):
    client = Client()
    client.force_login(customer)
    order = bought(client, catalog["usd"])
    assert admin_client.get("/admin/orders/order/").status_code == 200
    found = admin_client.get(f"/admin/orders/order/?q={order.public_id}").content.decode()
    assert order.public_id in found
    found = admin_client.get(f"/admin/orders/order/?q={customer.email}").content.decode()
    assert order.public_id in found
    detail = admin_client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert order.checkout_session_id in detail
