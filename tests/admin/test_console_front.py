"""The console's front page: work to do with counts linking to filtered lists, webhook health,
events per hour, and one search box that takes any id, email or order number."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from billing.models import InboundEvent
from orders.models import OrderPayment

pytestmark = pytest.mark.django_db(transaction=True)


def work_counts(html: str) -> dict[str, str]:
    return dict(
        re.findall(
            r'id="work-([a-z_]+)">\s*<a href="[^"]*"><span class="front-count">([^<]+)<', html
        )
    )


def test_the_front_page_says_what_needs_doing(world, staff):
    InboundEvent.objects.filter(pk=InboundEvent.objects.first().pk).update(status="failed")
    open_flags = OrderPayment.objects.exclude(flag="").filter(resolved_at=None).count()
    assert open_flags
    page = staff.client("support").get(reverse("admin:index")).content.decode()
    counts = work_counts(page)
    assert counts["flagged_payments"] == str(open_flags)
    assert counts["events_failed"] == "1"
    # urgent work with something to do is marked and comes first
    assert page.index('id="work-events_failed"') < page.index('id="work-events_retrying"')
    assert 'class="front-urgent" id="work-flagged_payments"' in page
    # each count links to the filtered list, which shows that many
    flagged = staff.client("support").get(
        reverse("admin:orders_orderpayment_changelist") + "?flagged=yes"
    )
    assert flagged.context["cl"].result_count == open_flags
    # webhook health: the endpoint, its last delivery and its refusals (the forged one)
    health = page[page.index('id="endpoint-health"') :]
    assert world.endpoint.url[:40] in health and "never" not in health.split("</tr>")[1]
    assert '<svg id="events-chart"' in page and page.count('class="bar-received"') == 24


def test_staff_without_permissions_see_no_work_and_no_counts(world, staff):
    page = staff.client("nobody").get(reverse("admin:index"))
    assert page.status_code == 200
    assert work_counts(page.content.decode()) == {}
    assert 'id="webhook-health"' not in page.content.decode()


@pytest.mark.parametrize(
    ("term", "lands_on"),
    [
        ("order id", "order"),
        ("order number", "order"),
        ("customer id", "customer"),
        ("payment intent", "paymentintent"),
        ("event id", "inboundevent"),
        ("email", "order list"),
        ("unknown", "order list"),
    ],
)
def test_one_search_box_takes_any_id(world, staff, term, lands_on):
    paid = world.paid
    event = InboundEvent.objects.filter(object_id=paid.payment_intent_id).first()
    query = {
        "order id": paid.public_id,
        "order number": paid.number,
        "customer id": paid.customer_id,
        "payment intent": paid.payment_intent_id,
        "event id": event.pk,
        "email": "shopper@example.com",
        "unknown": "pi_nothing0000",
    }[term]
    client = staff.client("support")
    response = client.get(reverse("admin:orders_order_find"), {"q": query})
    assert response.status_code == 302
    target = {
        "order": reverse("admin:orders_order_change", args=[quote(paid.public_id)]),
        "customer": reverse("admin:djstripe_customer_change", args=[quote(paid.customer_id)]),
        "paymentintent": reverse(
            "admin:djstripe_paymentintent_change", args=[quote(paid.payment_intent_id)]
        ),
        "inboundevent": reverse("admin:billing_inboundevent_change", args=[quote(event.pk)]),
        "order list": reverse("admin:orders_order_changelist"),
    }[lands_on]
    assert response["Location"].split("?")[0] == target
    assert client.get(response["Location"]).status_code == 200


def test_the_open_flags_count_reads_an_index_not_the_payments_table(world):
    """The front page's count of open flags at a size where a table scan would show: many
    payments, few of them flagged; the planner takes the partial index of open flags."""
    from django.db import connection

    template = OrderPayment.objects.filter(flag="").first()
    OrderPayment.objects.bulk_create(
        OrderPayment(
            order_id=template.order_id, kind=template.kind, status=template.status,
            amount=template.amount, currency=template.currency, source="bench",
        )
        for _ in range(20_000)
    )  # fmt: skip
    rows = OrderPayment.objects.exclude(flag="").filter(resolved_at=None)
    sql, params = rows.order_by().values("pk")[:1001].query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE orders_orderpayment")
            cursor.execute(f"EXPLAIN {sql}", params)
        else:
            cursor.execute("ANALYZE")
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        plan = " ".join(str(row) for row in cursor.fetchall())
    assert "orderpayment_open_flags" in plan, plan
