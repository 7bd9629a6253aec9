"""One active subscription per customer and plan: the catalog shows "Your plan", a second
checkout is refused by the checkout service (not only hidden), concurrent buys start one
Checkout, and ``stripe_reconcile`` reports customers holding a plan twice. Stripe calls go
over HTTP to fakestripe; webhooks are delivered signed through the real intake."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from djstripe.models import Product

from billing import stripe_api
from billing.customers import customer_get_or_create
from orders.models import Order
from orders.services import (
    CheckoutError,
    catalog_sync,
    order_checkout_start,
    order_create,
    order_payment_start,
    order_return_check,
)
from orders.services.checkout import PLAN_CHECKOUT_BUSY
from orders.services.plans import PLAN_HELD, plans_held, subscriptions_duplicated
from tests.admin.conftest import deliver_all_events
from tests.orders.helpers import buy, stripe_list
from tests.orders.test_reconcile import by_kind, reconcile

S = Order.Status
pytestmark = pytest.mark.django_db(transaction=True)
_tokens = itertools.count(1)


def start(user, price: str, **kwargs):
    return order_checkout_start(
        user=user, price_id=price, quantity=1, request_token=f"plan-{next(_tokens)}", **kwargs
    )


def subscribe(user, price: str, emulator) -> Order:
    """Subscribe through checkout and Checkout; the return page confirms it."""
    step = start(user, price)
    emulator.complete_checkout(step.order.checkout_session_id)
    order = order_return_check(
        order=step.order, session_id=step.order.checkout_session_id, user=user
    )
    assert order.status == S.FULFILLED and order.subscription_id
    return order


def open_sessions() -> list[dict]:
    return [s for s in stripe_list("checkout.session") if s["status"] == "open"]


def pro_product() -> Product:
    return Product.objects.get(stripe_data__metadata__demo_key="pro")


def test_a_second_checkout_for_a_held_plan_is_refused(customer, catalog, stripe_emulator):
    member = subscribe(customer, catalog["monthly"], stripe_emulator)
    sessions = len(stripe_list("checkout.session"))
    # when the member asks for the same plan again, at the same price or the other one
    for price in (catalog["monthly"], catalog["yearly"]):
        with pytest.raises(CheckoutError) as refused:
            start(customer, price)
        # then nothing is started: the message names the plan, the order is the one to manage
        assert refused.value.message.startswith(PLAN_HELD.format(plan="Pro membership"))
        assert refused.value.order == member
    with pytest.raises(CheckoutError):
        order_create(user=customer, price_id=catalog["yearly"], quantity=1, request_token="x")
    assert len(stripe_list("checkout.session")) == sessions
    assert list(Order.objects.values_list("pk", flat=True)) == [member.pk]
    # one-time products are still bought as often as the customer likes
    assert start(customer, catalog["usd"]).url
    assert start(customer, catalog["usd"]).url


def test_the_buy_view_sends_the_member_to_their_plan(client, customer, catalog, stripe_emulator):
    member = subscribe(customer, catalog["monthly"], stripe_emulator)
    client.force_login(customer)
    response = buy(client, catalog["monthly"])
    assert response.status_code == 303
    assert response["Location"] == f"/orders/{member.public_id}/"
    page = client.get(response["Location"]).content.decode()
    assert "You already subscribe to Pro membership" in page
    assert Order.objects.count() == 1


def test_the_catalog_offers_manage_instead_of_subscribe(client, customer, catalog, stripe_emulator):
    client.force_login(customer)
    page = client.get("/").content.decode()
    assert page.count('name="buy">Subscribe<') == 2
    member = subscribe(customer, catalog["monthly"], stripe_emulator)
    page = client.get("/").content.decode()
    assert page.count('name="buy">Subscribe<') == 0
    assert page.count("Your plan<") == 1
    assert f'href="/orders/{member.public_id}/">Manage<' in page
    assert "Not available with your plan" in page  # the yearly price of the same plan
    assert page.count('name="buy">Buy<') == 3  # the one-time products


def test_an_ended_plan_can_be_bought_again(customer, catalog, stripe_emulator, deliver_event):
    member = subscribe(customer, catalog["monthly"], stripe_emulator)
    stripe_api.action(object_type="subscription", name="cancel", stripe_id=member.subscription_id)
    deliver_all_events(deliver_event)
    member.refresh_from_db()
    assert member.status == S.CANCELED
    assert plans_held(user=customer) == {}
    assert start(customer, catalog["yearly"]).url


def test_a_plan_that_allows_several(customer, catalog, stripe_emulator):
    subscribe(customer, catalog["monthly"], stripe_emulator)
    stripe_api.update(
        object_type="product",
        stripe_id=pro_product().id,
        params={"metadata": {"allow_multiple": "true"}},
    )
    catalog_sync()
    # then a second one is sold, and reconcile does not call it a duplicate
    second = subscribe(customer, catalog["monthly"], stripe_emulator)
    assert second.subscription_id
    assert subscriptions_duplicated() == []


def test_an_unpaid_plan_order_is_reused_not_duplicated(customer, catalog, stripe_emulator):
    # given a Subscribe left on Checkout, then pressed again (another tab, Back)
    first = start(customer, catalog["monthly"])
    second = start(customer, catalog["monthly"])
    # then both lead to the same order and the same Checkout
    assert second.order == first.order and second.url == first.url
    assert Order.objects.count() == 1 and len(open_sessions()) == 1
    # at the other price the unpaid order is replaced, its session closed in Stripe
    yearly = start(customer, catalog["yearly"])
    first.order.refresh_from_db()
    assert first.order.status == S.CANCELED and first.order.replaced_by == yearly.order
    assert [s["id"] for s in open_sessions()] == [yearly.order.checkout_session_id]


def test_a_subscription_made_in_the_dashboard_holds_the_plan(
    client, customer, catalog, stripe_emulator, deliver_event
):
    # given an unpaid Subscribe order, then a subscription made by hand in Stripe
    pending = start(customer, catalog["yearly"]).order
    stripe_customer = customer_get_or_create(user=customer)
    stripe_api.create(
        object_type="subscription",
        params={
            "customer": stripe_customer.id,
            "items": [{"price": catalog["monthly"]}],
            "default_payment_method": "pm_card_visa",
        },
    )
    deliver_all_events(deliver_event)
    assert set(plans_held(user=customer)) == {pro_product().id}
    # then neither a new checkout nor paying the old order bills the customer twice
    with pytest.raises(CheckoutError) as refused:
        start(customer, catalog["monthly"])
    assert refused.value.order is None
    with pytest.raises(CheckoutError):
        order_payment_start(order=pending)
    # and the catalog says so, managed from the orders list (no order of the shop's)
    client.force_login(customer)
    page = client.get("/").content.decode()
    assert 'href="/orders/">Manage<' in page and 'name="buy">Subscribe<' not in page


@pytest.mark.parametrize("prices", [("monthly", "monthly"), ("monthly", "yearly")])
def test_two_buys_at_the_same_moment_start_one_checkout(customer, catalog, prices):
    # given two Subscribe buttons (two tabs) pressed at the same instant
    barrier = threading.Barrier(2)
    results: list = []

    def submit(price: str) -> None:
        try:
            c = Client()
            c.force_login(customer)
            barrier.wait()
            results.append(buy(c, catalog[price]))
        except Exception as exc:  # pragma: no cover - reported below
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(price,)) for price in prices]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [getattr(r, "status_code", r) for r in results] == [303, 303]
    # then one Checkout is open, for the one order that can still be paid
    sessions = open_sessions()
    payable = Order.objects.filter(status=S.AWAITING_PAYMENT, replaced_by=None)
    assert len(sessions) == 1, sessions
    assert [o.checkout_session_id for o in payable] == [sessions[0]["id"]]
    if prices[0] == prices[1]:
        # the same order reused: both tabs land on the same Checkout
        assert results[0]["Location"] == results[1]["Location"] == sessions[0]["url"]
        assert Order.objects.count() == 1
    else:
        # the later one replaced the other, or was told a checkout is being started
        locations = {r["Location"] for r in results}
        assert sessions[0]["url"] in locations


def test_a_plan_checkout_being_started_elsewhere_is_not_opened_beside(
    customer, catalog, stripe_emulator, monkeypatch
):
    """The window the row lock cannot cover: another request is in Stripe, creating the
    session of its order at the other price. Ours is refused rather than opened beside it."""
    from orders.services import checkout

    # given another tab's order of the plan, its session still being created
    elsewhere = order_create(
        user=customer, price_id=catalog["monthly"], quantity=1, request_token="tab-1"
    )
    with pytest.raises(CheckoutError) as refused:
        start(customer, catalog["yearly"])
    assert refused.value.message == PLAN_CHECKOUT_BUSY
    # and when it appears only after ours closed the plan's other unpaid orders
    elsewhere.delete()
    real_close = checkout.unpaid_orders_close

    def close_then_race(*, user, price_id):
        closed = real_close(user=user, price_id=price_id)
        order_create(user=user, price_id=catalog["monthly"], quantity=1, request_token="tab-2")
        return closed

    monkeypatch.setattr(checkout, "unpaid_orders_close", close_then_race)
    with pytest.raises(CheckoutError) as refused:
        start(customer, catalog["yearly"])
    assert refused.value.message == PLAN_CHECKOUT_BUSY
    assert Order.objects.count() == 1 and open_sessions() == []
    # an order left without a session for minutes (its Stripe call failed) is replaced
    monkeypatch.setattr(checkout, "unpaid_orders_close", real_close)
    Order.objects.update(created_at=timezone.now() - timedelta(minutes=10))
    step = start(customer, catalog["yearly"])
    assert step.url and Order.objects.get(request_token="tab-2").replaced_by == step.order


def test_reconcile_reports_a_customer_holding_a_plan_twice(
    customer, make_user, catalog, stripe_emulator, deliver_event
):
    # given a member, and a second subscription to the same plan made in Stripe directly
    member = subscribe(customer, catalog["monthly"], stripe_emulator)
    other = subscribe(make_user(), catalog["yearly"], stripe_emulator)
    duplicate = stripe_api.create(
        object_type="subscription",
        params={
            "customer": member.customer_id,
            "items": [{"price": catalog["yearly"]}],
            "default_payment_method": "pm_card_visa",
        },
    )
    assert duplicate.status == "active"
    deliver_all_events(deliver_event)
    # when reconcile runs
    report, standing = reconcile()
    # then the customer is reported, with both subscriptions and the shop's order
    found = by_kind(report).get("duplicate_subscription")
    assert found is not None, report["findings"]
    assert len(found) == 1 and standing
    assert found[0]["stripe_id"] == member.customer_id
    assert found[0]["order"] == member.public_id
    assert member.subscription_id in found[0]["detail"] and duplicate.id in found[0]["detail"]
    assert "Pro membership" in found[0]["detail"]
    assert other.customer_id not in {f["stripe_id"] for f in found}
    assert report["counts"]["duplicate_subscription"] == 1
    # and once the duplicate is cancelled, it is no longer reported
    stripe_api.action(object_type="subscription", name="cancel", stripe_id=duplicate.id)
    deliver_all_events(deliver_event)
    assert subscriptions_duplicated() == []


def test_the_duplicate_check_is_one_grouped_query(
    make_user, catalog, stripe_emulator, deliver_event, django_assert_max_num_queries
):
    for _ in range(3):
        member = subscribe(make_user(), catalog["monthly"], stripe_emulator)
        stripe_api.create(
            object_type="subscription",
            params={
                "customer": member.customer_id,
                "items": [{"price": catalog["monthly"]}],
                "default_payment_method": "pm_card_visa",
            },
        )
    deliver_all_events(deliver_event)
    # the groups, their items, their orders: three queries however many customers
    with django_assert_max_num_queries(3):
        found = subscriptions_duplicated()
    assert len(found) == 3
