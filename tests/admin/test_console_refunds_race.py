"""A refund submitted several times at once makes one refund: the same confirmation posted by
five threads together, and one request approved by two Billing admins together. Real
concurrency: threads, each with its own database connection, through the real views; Stripe
is the emulator over HTTP."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.urls import reverse

from orders.models import OrderRefund
from orders.staff import BILLING_ADMIN
from tests.admin.conftest import PASSWORD
from tests.admin.test_console_refunds import confirm, form_token, stripe_refunds

pytestmark = pytest.mark.django_db(transaction=True)
R = OrderRefund.Status


@pytest.fixture(autouse=True)
def _threshold(settings):
    settings.REFUND_APPROVAL_THRESHOLDS = {"usd": 300}


def together(*targets) -> list:
    """Run the targets at the same instant; their results (or the exceptions they raised)."""
    barrier = threading.Barrier(len(targets))
    results: list = [None] * len(targets)

    def run(i, target):
        try:
            barrier.wait(10)
            results[i] = target()
        except BaseException as exc:  # reported to the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a racer hung"
    return results


def test_one_confirmation_posted_five_times_at_once_refunds_once(world, staff):
    order = world.paid
    token, payment = form_token(staff.client("billing"), order)
    before = len(stripe_refunds(order))
    clients = [staff.client("billing") for _ in range(5)]
    answers = together(
        *(lambda c=c: confirm(c, order, "4.00", token=token, payment=payment) for c in clients)
    )
    assert [getattr(a, "status_code", a) for a in answers] == [302] * 5
    made = [r for r in stripe_refunds(order) if r["amount"] == 400]
    assert len(stripe_refunds(order)) == before + 1 and len(made) == 1
    [row] = order.refunds.filter(request_token=token)
    assert (row.refund_id, row.status) == (made[0]["id"], R.SUCCEEDED)
    order.refresh_from_db()
    assert order.amount_refunded == 900


def test_one_request_approved_by_two_billing_admins_at_once_refunds_once(
    world, staff, django_user_model
):
    order = world.paid
    other = django_user_model.objects.create_user("billing2", password=PASSWORD, is_staff=True)
    other.groups.add(Group.objects.get(name=BILLING_ADMIN))
    support = staff.client("support")
    token, payment = form_token(support, order)
    assert (
        confirm(support, order, "6.00", token=token, payment=payment, intent="request").status_code
        == 302
    )
    row = order.refunds.get(request_token=token)
    before = len(stripe_refunds(order))
    approve = reverse("admin:orders_orderrefund_approve", args=[row.pk])
    first, second = staff.client("billing"), staff.client("billing")
    second.force_login(other)
    answers = together(lambda: first.post(approve), lambda: second.post(approve))
    assert [getattr(a, "status_code", a) for a in answers] == [302, 302]
    made = [r for r in stripe_refunds(order) if r["amount"] == 600]
    assert len(stripe_refunds(order)) == before + 1 and len(made) == 1
    row.refresh_from_db()
    assert (row.refund_id, row.status) == (made[0]["id"], R.SUCCEEDED)
    assert row.approved_by in (staff.billing, other)
