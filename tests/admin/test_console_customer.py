"""A customer's whole account on its cus_ page, links only to pages the reader may open, and a
refused page logged in one line."""

from __future__ import annotations

import io
import logging
import re

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse
from djstripe.models import Charge, Invoice, Subscription

from billing.admin import account
from orders.models import Order

pytestmark = pytest.mark.django_db(transaction=True)


def section(html: str, key: str) -> str:
    start = html.index(f'id="account-{key}"')
    return html[start : html.index("</fieldset>", start)]


def customer_page(client, customer_id: str) -> str:
    response = client.get(reverse("admin:djstripe_customer_change", args=[quote(customer_id)]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_customers_page_shows_their_whole_account(world, staff):
    customer_id = world.paid.customer_id
    html = customer_page(staff.client("support"), customer_id)
    orders = section(html, "orders")
    for order in Order.objects.filter(user=world.paid.user):
        assert order.public_id in orders
    for charge in Charge.objects.filter(customer_id=customer_id):
        assert charge.id in section(html, "payments")
    refunds = section(html, "refunds")
    assert "re_" in refunds and "$5.00" in refunds
    for sub in Subscription.objects.filter(customer_id=customer_id):
        assert sub.id in section(html, "subscriptions")
    for invoice in Invoice.objects.filter(customer_id=customer_id):
        assert invoice.id in section(html, "invoices")
    # their events, not only the customer object's own
    history = html[html.index('id="event-history"') :]
    assert "checkout.session.completed" in history and "charge.refunded" in history
    # fields that do not apply are not shown: no amount, no link to itself, no related objects
    summary = html[: html.index('id="account-orders"')]
    assert "Related objects" not in summary and ">Amount:<" not in summary
    assert (
        f'href="{reverse("admin:djstripe_customer_change", args=[quote(customer_id)])}"'
        not in (summary[summary.index("<fieldset") :])
    )


def test_each_list_is_capped_and_links_to_all(world, staff, monkeypatch):
    monkeypatch.setattr(account, "ACCOUNT_ROWS", 1)
    html = customer_page(staff.client("support"), world.paid.customer_id)
    payments = section(html, "payments")
    assert payments.count("<tr>") == 2  # the header and one row
    assert "The 1 newest shown" in payments and f"?q={world.paid.customer_id}" in payments
    orders = section(html, "orders")
    assert orders.count("<tr>") == 2 and "All of them" in orders


def test_the_page_costs_the_same_queries_however_many_objects(
    world, staff, django_assert_max_num_queries
):
    client = staff.client("support")
    url = reverse("admin:djstripe_customer_change", args=[quote(world.paid.customer_id)])
    client.get(url)
    with django_assert_max_num_queries(60):
        assert client.get(url).status_code == 200


def test_support_sees_no_link_to_a_user_page_it_may_not_open(world, staff):
    customer_id = world.paid.customer_id
    user_url = reverse("admin:auth_user_change", args=[world.paid.user_id])
    assert staff.client("support").get(user_url).status_code == 403
    for client in (staff.client("support"),):
        html = customer_page(client, customer_id)
        assert user_url not in html and f"user {world.paid.user_id}" in html
        order_page = client.get(
            reverse("admin:orders_order_change", args=[quote(world.paid.public_id)])
        ).content.decode()
        assert user_url not in order_page
    # the superuser may open it, and is given the link
    assert user_url in customer_page(staff.client("superuser"), customer_id)


def test_a_refused_page_logs_one_line(world, staff):
    handler = logging.getLogger("django").handlers[0]  # settings.LOGGING's stdout handler
    stream = io.StringIO()
    old = handler.setStream(stream)
    try:
        response = staff.client("support").get(
            reverse("admin:auth_user_change", args=[world.paid.user_id])
        )
    finally:
        handler.setStream(old)
    assert response.status_code == 403
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    forbidden = [line for line in lines if "Forbidden" in line]
    assert len(forbidden) == 1 and not any(
        re.match(r"\s*(Traceback|File )", line) for line in lines
    )
