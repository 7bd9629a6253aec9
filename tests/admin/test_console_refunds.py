"""Refunds from the console, as direct POSTs and page loads: Support refunds up to the approval
threshold and not above it (403, nothing sent to Stripe); a confirmation submitted twice makes
one refund; every page of refunds and disputes answers 200 to those who may see it and 403
(never 500) to the others.

The shop is the console's seeded one (tests/admin/conftest.py); refunds go to the emulator over
HTTP, and the events they cause are delivered, signed, through the real intake.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.admin.utils import quote
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from djstripe.models import Charge

from billing import stripe_api
from billing.display import admin_url
from billing.models import AuditEntry
from orders.models import Order, OrderDispute, OrderRefund
from tests.admin.conftest import buy, deliver_all_events, price_id

pytestmark = pytest.mark.django_db(transaction=True)
R = OrderRefund.Status


@pytest.fixture(autouse=True)
def _threshold(settings):
    # Support may refund $3.00 at once; the seeded order is $19.00 ($5.00 refunded already).
    settings.REFUND_APPROVAL_THRESHOLDS = {"usd": 300, "jpy": 500}


def refund_page(order: Order) -> str:
    return reverse("admin:orders_orderrefund_new", args=[order.public_id])


def form_token(client, order: Order) -> tuple[str, int]:
    """Open the Refund page as a person would: its one-time token and the payment chosen."""
    page = client.get(refund_page(order))
    assert page.status_code == 200, page.content[:500]
    text = page.content.decode()
    token = re.search(r'name="token" value="([^"]+)"', text).group(1)
    payment = re.search(r'<option value="(\d+)" selected', text).group(1)
    return token, int(payment)


def confirm(client, order: Order, amount: str, *, token: str, payment: int, intent="refund"):
    """POST the confirmation step directly (what its form sends)."""
    return client.post(
        refund_page(order),
        {
            "payment": payment,
            "how": "amount",
            "amount": amount,
            "reason": "requested_by_customer",
            "note": "customer asked by phone",
            "token": token,
            "confirm": "1",
            "intent": intent,
        },
    )


def stripe_refunds(order: Order) -> list[dict]:
    return [
        stripe_api.as_dict(r)
        for r in stripe_api.list_all(
            object_type="refund", params={"payment_intent": order.payment_intent_id}
        )
    ]


def test_support_cannot_refund_above_the_threshold_by_a_direct_post(world, staff):
    order = world.paid
    client = staff.client("support")
    token, payment = form_token(client, order)
    in_stripe = len(stripe_refunds(order))
    rows = OrderRefund.objects.count()
    # when: Support posts the confirmation of a $10 refund (over $3) as a refund, not a request
    response = confirm(client, order, "10.00", token=token, payment=payment)
    # then: refused, nothing sent to Stripe, nothing recorded but the refusal
    assert response.status_code == 403
    assert len(stripe_refunds(order)) == in_stripe
    assert OrderRefund.objects.count() == rows
    refusal = AuditEntry.objects.get(actor=staff.support, result=AuditEntry.Result.REFUSED)
    assert refusal.action == "refund" and "over the approval threshold" in refusal.message
    # and a staff user without the permission cannot even open the page
    assert staff.client("nobody").get(refund_page(order)).status_code == 403
    nobody = confirm(staff.client("nobody"), order, "1.00", token=token, payment=payment)
    assert nobody.status_code == 403 and len(stripe_refunds(order)) == in_stripe


def test_support_refunds_below_the_threshold_at_once(world, staff, deliver_event):
    order = world.paid
    client = staff.client("support")
    token, payment = form_token(client, order)
    # the review step states what the customer gets back, without asking approval
    review = client.post(
        refund_page(order),
        {"payment": payment, "how": "amount", "amount": "2.50", "reason": "duplicate",
         "token": token},
    )  # fmt: skip
    text = review.content.decode()
    assert review.status_code == 200 and 'id="refund-money">$2.50<' in text
    assert 'id="confirm-refund"' in text and 'id="needs-approval"' not in text
    # when: confirmed
    response = confirm(client, order, "2.50", token=token, payment=payment)
    # back to the order's page at its top, where the result message is (no #anchor)
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "admin:orders_order_change", args=[quote(order.public_id)]
    )
    # then: one refund of $2.50 in Stripe, recorded, by Support, with no approval needed
    made = [r for r in stripe_refunds(order) if r["amount"] == 250]
    assert len(made) == 1 and made[0]["metadata"]["order_id"] == order.public_id
    row = OrderRefund.objects.get(refund_id=made[0]["id"])
    assert (row.status, row.origin, row.requested_by, row.amount) == (
        R.SUCCEEDED, OrderRefund.Origin.CONSOLE, staff.support, 250,
    )  # fmt: skip
    assert row.approved_by is None and row.note == "customer asked by phone"
    deliver_all_events(deliver_event)  # its events change nothing more
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Order.Status.PARTIALLY_REFUNDED, 750)
    assert order.refunds.filter(refund_id=made[0]["id"]).count() == 1
    assert AuditEntry.objects.filter(actor=staff.support, action="refund", result="done").exists()


def test_a_confirmation_posted_twice_makes_one_refund(world, staff, deliver_event):
    order = world.paid
    client = staff.client("billing")
    token, payment = form_token(client, order)
    before = len(stripe_refunds(order))
    first = confirm(client, order, "4.00", token=token, payment=payment)
    second = confirm(client, order, "4.00", token=token, payment=payment)
    assert first.status_code == second.status_code == 302
    assert len(stripe_refunds(order)) == before + 1
    assert order.refunds.filter(request_token=token).count() == 1
    deliver_all_events(deliver_event)
    order.refresh_from_db()
    assert order.amount_refunded == 900  # the seeded $5.00 and this $4.00
    # a refund larger than what is left is refused before Stripe is called
    token, payment = form_token(client, order)
    too_much = confirm(client, order, "10.01", token=token, payment=payment)
    assert too_much.status_code == 200
    assert "more than this payment has left to refund" in too_much.content.decode()
    assert len(stripe_refunds(order)) == before + 1


# --- Every page in the area, for each kind of staff user ---------------------------------------

OK, DENIED = 200, 403
WHO = ("superuser", "billing", "support", "nobody")
PAGES = {
    # name: expected status for superuser, billing, support, nobody
    "refund list": (OK, OK, OK, DENIED),
    "refunds awaiting approval": (OK, OK, OK, DENIED),
    "refunds needing attention": (OK, OK, OK, DENIED),
    "refund list searched by re_": (OK, OK, OK, DENIED),
    "a refund request": (OK, OK, OK, DENIED),
    "a failed refund": (OK, OK, OK, DENIED),
    "approve": (OK, OK, DENIED, DENIED),
    "reject": (OK, OK, DENIED, DENIED),
    "resolve": (OK, OK, DENIED, DENIED),
    "the order's Refund page": (OK, OK, OK, DENIED),
    "the Refund page for a payment": (OK, OK, OK, DENIED),
    "the order page": (OK, OK, OK, DENIED),
    "dispute list": (OK, OK, OK, DENIED),
    "disputes due soon": (OK, OK, OK, DENIED),
    "dispute list searched by du_": (OK, OK, OK, DENIED),
    "a dispute": (OK, OK, OK, DENIED),
    "dispute note (POST)": (302, 302, 302, DENIED),
    "mirrored disputes": (OK, OK, OK, DENIED),
    "a mirrored dispute": (OK, OK, OK, DENIED),
    "a mirrored refund": (OK, OK, OK, DENIED),
}


@pytest.fixture
def area(world, staff, stripe_emulator, deliver_event) -> dict[str, tuple[str, str]]:
    """A refund request awaiting approval, a failed refund and a dispute, on the seeded order;
    the pages of each (method, url)."""
    order = world.paid
    support = staff.client("support")
    token, payment = form_token(support, order)
    asked = confirm(support, order, "6.00", token=token, payment=payment, intent="request")
    assert asked.status_code == 302
    request_row = order.refunds.get(request_token=token)
    assert request_row.status == R.REQUESTED
    stripe_emulator.fail_refund(world.refund_id)
    dispute = stripe_emulator.dispute_charge(request_row.charge_id, reason="fraudulent")
    deliver_all_events(deliver_event)
    failed = order.refunds.get(refund_id=world.refund_id)
    assert failed.flagged
    row = OrderDispute.objects.get(dispute_id=dispute["id"])
    refunds = "admin:orders_orderrefund"
    disputes = "admin:orders_orderdispute"
    return {
        "refund list": ("get", reverse(f"{refunds}_changelist")),
        "refunds awaiting approval": (
            "get", reverse(f"{refunds}_changelist") + "?status__exact=requested"),
        "refunds needing attention": ("get", reverse(f"{refunds}_changelist") + "?attention=yes"),
        "refund list searched by re_": (
            "get", reverse(f"{refunds}_changelist") + f"?q={world.refund_id}"),
        "a refund request": ("get", reverse(f"{refunds}_change", args=[request_row.pk])),
        "a failed refund": ("get", reverse(f"{refunds}_change", args=[failed.pk])),
        "approve": ("get", reverse(f"{refunds}_approve", args=[request_row.pk])),
        "reject": ("get", reverse(f"{refunds}_reject", args=[request_row.pk])),
        "resolve": ("get", reverse(f"{refunds}_resolve", args=[failed.pk])),
        "the order's Refund page": ("get", refund_page(order)),
        "the Refund page for a payment": ("get", refund_page(order) + f"?payment={payment}"),
        "the order page": ("get", reverse("admin:orders_order_change", args=[order.pk])),
        "dispute list": ("get", reverse(f"{disputes}_changelist")),
        "disputes due soon": ("get", reverse(f"{disputes}_changelist") + "?due=soon"),
        "dispute list searched by du_": (
            "get", reverse(f"{disputes}_changelist") + f"?q={row.dispute_id}"),
        "a dispute": ("get", reverse(f"{disputes}_change", args=[row.pk])),
        "dispute note (POST)": ("post", reverse(f"{disputes}_note", args=[row.pk])),
        "mirrored disputes": ("get", reverse("admin:djstripe_dispute_changelist")),
        "a mirrored dispute": ("get", reverse("admin:djstripe_dispute_change", args=[row.dispute_id])),
        "a mirrored refund": ("get", reverse("admin:djstripe_refund_change", args=[world.refund_id])),
    }  # fmt: skip


def test_every_refund_and_dispute_page_answers_200_or_403(area, world, staff):
    assert set(area) == set(PAGES)
    seen = {}
    for who in WHO:
        client = staff.client(who)
        for name, (method, url) in area.items():
            if method == "post":
                response = client.post(url, {"note": f"evidence sent by {who}"})
            else:
                response = client.get(url)
            seen[name, who] = response.status_code
    expected = {(name, who): PAGES[name][i] for name in PAGES for i, who in enumerate(WHO)}
    assert {k: v for k, v in seen.items() if v != expected[k]} == {}
    # the note of the last one allowed to keep it is the dispute's
    assert OrderDispute.objects.get(order=world.paid).note == "evidence sent by support"


def test_approve_reject_and_resolve_do_what_they_say(area, world, staff, deliver_event):
    order = world.paid
    request_row = order.refunds.get(status=R.REQUESTED)
    # Support cannot approve its own request (403), a Billing admin can, once
    approve = reverse("admin:orders_orderrefund_approve", args=[request_row.pk])
    assert staff.client("support").post(approve).status_code == 403
    request_row.refresh_from_db()
    assert request_row.status == R.REQUESTED
    # a charge with a dispute standing cannot be refunded: the approval says so
    in_stripe = len(stripe_refunds(order))
    refused = staff.client("billing").post(approve, {"note": "ok"})
    assert refused.status_code == 200 and "charged back" in refused.content.decode()
    request_row.refresh_from_db()
    assert request_row.status == R.REQUESTED and len(stripe_refunds(order)) == in_stripe
    # rejecting needs a note, then frees the amount
    reject = reverse("admin:orders_orderrefund_reject", args=[request_row.pk])
    assert (
        "the note is required"
        in staff.client("billing").post(reject, {"note": ""}).content.decode()
    )
    assert staff.client("billing").post(reject, {"note": "disputed"}).status_code == 302
    request_row.refresh_from_db()
    assert (request_row.status, request_row.rejected_by) == (R.REJECTED, staff.billing)
    # the failed refund is resolved with a note, by a Billing admin
    failed = order.refunds.get(flagged=True)
    resolve = reverse("admin:orders_orderrefund_resolve", args=[failed.pk])
    assert staff.client("support").post(resolve, {"note": "x"}).status_code == 403
    assert (
        staff.client("billing").post(resolve, {"note": "paid back by transfer"}).status_code == 302
    )
    failed.refresh_from_db()
    assert failed.resolved_by == staff.billing
    assert order.history.filter(note__contains="paid back by transfer").exists()


def test_a_zero_decimal_currency_is_refunded_in_its_own_units(
    world, staff, stripe_emulator, deliver_event
):
    # given: a ¥1,500 order, paid
    order = buy(world.customer, price_id("jpy"), card="4242424242424242", emulator=stripe_emulator)
    deliver_all_events(deliver_event)
    order.refresh_from_db()
    assert (order.status in (Order.Status.PAID, Order.Status.FULFILLED), order.amount_total) == (
        True,
        1500,
    )
    client = staff.client("billing")
    token, payment = form_token(client, order)
    # a fraction of a yen is refused; ¥500 is reviewed as ¥500 (JPY), not ¥5.00
    fraction = client.post(refund_page(order), {"payment": payment, "how": "amount",
                                                 "amount": "12.50", "token": token})  # fmt: skip
    assert "JPY amounts have 0 decimal places" in fraction.content.decode()
    review = client.post(refund_page(order), {"payment": payment, "how": "amount",
                                               "amount": "500", "token": token})  # fmt: skip
    text = review.content.decode()
    assert (
        'id="refund-money">¥500<' in text and "(JPY)" in text and 'id="refund-left">¥1,000<' in text
    )
    # when: confirmed, Stripe is asked for 500 (yen are its minor unit)
    assert confirm(client, order, "500", token=token, payment=payment).status_code == 302
    [made] = stripe_refunds(order)
    assert (made["amount"], made["currency"]) == (500, "jpy")
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Order.Status.PARTIALLY_REFUNDED, 500)


def test_a_refund_by_line_and_in_full(world, staff, deliver_event):
    order = world.paid  # one line of $19.00, $5.00 refunded already
    client = staff.client("billing")
    token, payment = form_token(client, order)
    item = order.items.get()
    # by line: the whole line is more than the $14.00 left, refused before Stripe
    by_line = client.post(refund_page(order), {"payment": payment, "how": "lines",
                                                f"line_{item.pk}": "1", "token": token})  # fmt: skip
    assert "more than this payment has left to refund ($14.00 of $19.00" in by_line.content.decode()
    # in full: what is left
    full = client.post(refund_page(order), {"payment": payment, "how": "full", "token": token,
                                             "reason": "requested_by_customer"})  # fmt: skip
    assert 'id="refund-money">$14.00<' in full.content.decode()
    done = client.post(refund_page(order), {"payment": payment, "how": "full", "token": token,
                                             "reason": "requested_by_customer", "confirm": "1",
                                             "intent": "refund"})  # fmt: skip
    assert done.status_code == 302
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Order.Status.REFUNDED, 1900)
    deliver_all_events(deliver_event)
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Order.Status.REFUNDED, 1900)
    assert order.refunds.filter(status=R.SUCCEEDED).count() == 2


def test_refund_and_dispute_lists_make_as_many_queries_however_many_rows(
    area, world, staff, django_user_model
):
    names = ("refund list", "refunds awaiting approval", "refunds needing attention",
             "dispute list", "disputes due soon", "the order page")  # fmt: skip
    client = staff.client("billing")

    def counts() -> dict[str, int]:
        found = {}
        for name in names:
            with CaptureQueriesContext(connection) as queries:
                assert client.get(area[name][1]).status_code == 200, name
            found[name] = len(queries)
        return found

    before = counts()
    # given: 25 more refunds (each asked and approved by someone else) and disputes
    order, payment = world.paid, world.paid.payments.get()
    soon = timezone.now() + dt.timedelta(days=1)
    for n in range(25):
        asker = django_user_model.objects.create_user(f"asker{n}", is_staff=True)
        approver = django_user_model.objects.create_user(f"approver{n}", is_staff=True)
        OrderRefund.objects.create(
            order=order, payment=payment, refund_id=f"re_grow{n}", amount=1, currency="usd",
            status=R.REQUESTED if n % 2 else R.FAILED, flagged=not n % 2,
            origin=OrderRefund.Origin.CONSOLE, requested_by=asker, approved_by=approver,
            source="test",
        )  # fmt: skip
        OrderDispute.objects.create(
            dispute_id=f"du_grow{n}", order=order, amount=1, currency="usd",
            state=OrderDispute.State.NEEDS_RESPONSE, stripe_status="needs_response",
            due_by=soon, respond_by=soon,
        )  # fmt: skip
    after = counts()
    assert {k: v for k, v in after.items() if v > before[k] or v > 30} == {}, (before, after)


def test_refund_is_offered_on_the_charge_page_to_those_who_may(world, staff):
    order = world.paid
    charge = Charge.objects.get(payment_intent_id=order.payment_intent_id, status="succeeded")
    payment = order.payments.get()
    for who in ("billing", "support", "superuser"):
        page = staff.client(who).get(admin_url("djstripe_charge", charge.id)).content.decode()
        assert 'id="refund"' in page and f"{refund_page(order)}?payment={payment.pk}" in page
    intent_page = staff.client("support").get(
        admin_url("djstripe_paymentintent", order.payment_intent_id)
    )
    assert f"{refund_page(order)}?payment={payment.pk}" in intent_page.content.decode()
    # a charge of no order's payment (the seed's disputed one) offers no Refund
    other = Charge.objects.exclude(payment_intent_id__in=order.payments.values("payment_intent_id"))
    stray = other.filter(stripe_data__disputed=True).first()
    assert stray is not None
    page = staff.client("billing").get(admin_url("djstripe_charge", stray.id)).content.decode()
    assert 'id="refund"' not in page


def test_a_dispute_note_is_kept_audited_and_in_the_order_timeline(area, world, staff):
    row = OrderDispute.objects.get(order=world.paid)
    note_url = reverse("admin:orders_orderdispute_note", args=[row.pk])
    assert (
        staff.client("support").post(note_url, {"note": "receipt and tracking sent"}).status_code
        == 302
    )
    row.refresh_from_db()
    assert (row.note, row.noted_by) == ("receipt and tracking sent", staff.support)
    entry = AuditEntry.objects.get(action="dispute_note", stripe_id=row.dispute_id)
    assert entry.actor == staff.support and entry.after == {"note": "receipt and tracking sent"}
    assert world.paid.history.filter(note__contains="receipt and tracking sent").exists()
    page = staff.client("billing").get(reverse("admin:orders_orderdispute_change", args=[row.pk]))
    text = page.content.decode()
    assert "receipt and tracking sent" in text and "Stripe" in text and "Dashboard" in text


def test_a_refund_stripe_did_not_answer_is_sent_again_once(world, staff, stripe_emulator):
    order = world.paid
    client = staff.client("billing")
    token, payment = form_token(client, order)
    before = len(stripe_refunds(order))
    # given: Stripe answers every request with an error (an outage)
    stripe_emulator.set_faults(error_rate=1.0)
    try:
        failed = confirm(client, order, "3.00", token=token, payment=payment)
    finally:
        stripe_emulator.clear_faults()
    # then: the person is told it may not be made yet and to submit again; the row waits
    assert failed.status_code == 200
    assert "Submit again: the same request never refunds twice" in failed.content.decode()
    row = order.refunds.get(request_token=token)
    assert row.status == R.SENDING and not row.refund_id
    assert len(stripe_refunds(order)) == before
    # when: submitted again, and again
    assert confirm(client, order, "3.00", token=token, payment=payment).status_code == 302
    assert confirm(client, order, "3.00", token=token, payment=payment).status_code == 302
    # then: one refund, recorded on the same row
    row.refresh_from_db()
    made = [r for r in stripe_refunds(order) if r["amount"] == 300]
    assert len(stripe_refunds(order)) == before + 1 and [r["id"] for r in made] == [row.refund_id]
    assert row.status == R.SUCCEEDED and order.refunds.count() == 2
