"""Refunds in a real browser (headless chromium, Playwright) against the live server and the
emulator: Support asks for a partial refund above what it may refund alone, a Billing admin
approves it, the order's page shows it and so does the customer's; a confirmation submitted
twice (a double click, then back and submit again) makes one refund. Screenshots go to
tests/artifacts/."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from billing import stripe_api
from orders.models import Order, OrderRefund
from tests.admin.conftest import PASSWORD
from tests.admin.test_console_browser import log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
R = OrderRefund.Status
REFUNDED_ON = re.compile(r"^\$5\.00 refunded on \d{1,2} [A-Z][a-z]{2} \d{4}$")


@pytest.fixture(autouse=True)
def _threshold(settings):
    settings.REFUND_APPROVAL_THRESHOLDS = {"usd": 300}  # Support refunds up to $3.00 alone


@pytest.fixture
def tabs(browser, live_server):
    """New browser contexts (one per person), closed at the end; no CSP refusals on any page."""
    contexts, said = [], []

    def open_tab():
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda message: said.append(message.text))
        return page

    yield open_tab
    for context in contexts:
        context.close()
    assert [m for m in said if "Content Security Policy" in m or "Refused to" in m] == []


def stripe_refunds(order: Order) -> list[dict]:
    return [
        stripe_api.as_dict(r)
        for r in stripe_api.list_all(
            object_type="refund", params={"payment_intent": order.payment_intent_id}
        )
    ]


def review(page, order: Order, amount: str, note: str) -> None:
    page.goto(reverse("admin:orders_order_change", args=[order.pk]))
    page.click("#refund-order")
    page.wait_for_selector("#refund-form")
    page.check("input[name=how][value=amount]")
    page.fill("#id_amount", amount)
    page.select_option("#id_reason", "requested_by_customer")
    page.fill("#id_note", note)
    page.click("#review-refund")
    page.wait_for_selector("#refund-summary")


def test_support_asks_billing_approves_and_both_pages_show_the_refund(tabs, world, staff):
    order = world.paid
    in_stripe = len(stripe_refunds(order))
    # Support asks for $5.00 back: more than the $3.00 it may refund alone
    support = tabs()
    log_in(support, "support")
    review(support, order, "5.00", "box arrived damaged")
    assert support.locator("#refund-money").inner_text() == "$5.00"
    assert "$3.00" in support.locator("#needs-approval").inner_text()
    assert support.locator("#confirm-refund").count() == 0
    shot(support, "refund-01-support-confirm")
    support.click("#request-refund")
    support.wait_for_selector(".messagelist .success")
    assert "a Billing admin must approve it" in support.locator(".messagelist").inner_text()
    assert "1 awaiting approval" in support.locator("#refunds h2").inner_text()
    shot(support, "refund-02-requested")
    assert len(stripe_refunds(order)) == in_stripe  # nothing refunded yet
    row = order.refunds.get(status=R.REQUESTED)
    assert (row.amount, row.requested_by, row.note) == (500, staff.support, "box arrived damaged")

    # A Billing admin finds it among the requests awaiting approval and approves it
    billing = tabs()
    log_in(billing, "billing")
    billing.goto(reverse("admin:orders_orderrefund_changelist") + "?status__exact=requested")
    rows = billing.locator("#result_list tbody tr")
    assert rows.count() == 1 and "$5.00" in rows.first.inner_text()
    rows.first.locator("a").first.click()
    billing.click("#approve-refund")
    billing.wait_for_selector("#decide-form")
    billing.fill("#decide-note", "damage photos checked")
    shot(billing, "refund-03-approve")
    billing.click("#confirm-approve")
    billing.wait_for_selector(".messagelist .success")
    assert "Approved: $5.00 refunded" in billing.locator(".messagelist").inner_text()
    shot(billing, "refund-04-approved")

    # The order's page shows it: made in Stripe, asked by Support, approved by Billing
    row.refresh_from_db()
    assert (row.status, row.approved_by) == (R.SUCCEEDED, staff.billing)
    made = [r for r in stripe_refunds(order) if r["id"] == row.refund_id]
    assert len(stripe_refunds(order)) == in_stripe + 1 and made[0]["amount"] == 500
    record = billing.locator(f"#refund-records tr:has(a:text-is('{row.refund_id}'))")
    text = record.inner_text()
    assert "$5.00" in text and "succeeded" in text and "support" in text and "billing" in text
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (Order.Status.PARTIALLY_REFUNDED, 1000)

    # The customer's order page shows it in plain words (with the $5.00 refunded before)
    customer = tabs()
    customer.goto("/accounts/login/")
    customer.fill("input[name=username]", world.customer.username)
    customer.fill("input[name=password]", PASSWORD)
    customer.click("#login")
    customer.wait_for_url(re.compile(r"/$"))
    customer.goto(f"/orders/{order.public_id}/")
    lines = customer.locator("#refunds li").all_inner_texts()
    assert len(lines) == 2 and all(REFUNDED_ON.match(line) for line in lines), lines
    shot(customer, "refund-05-customer")


def test_a_double_submitted_refund_form_makes_one_refund(tabs, world, staff):
    order = world.paid
    in_stripe = len(stripe_refunds(order))
    page = tabs()
    log_in(page, "billing")
    review(page, order, "2.00", "goodwill")
    form = page.eval_on_selector(
        "#refund-confirm-form", "f => Object.fromEntries(new FormData(f).entries())"
    )
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    # two clicks on Refund (chromium sends the second only if the first is still on the page),
    # then the same confirmation posted again with the tab's cookies (a retried POST)
    confirm_url = page.url
    page.dblclick("#confirm-refund")
    page.wait_for_selector(".messagelist")
    again = page.request.post(confirm_url, form={**form, "intent": "refund"})
    assert again.ok and "Refunded $2.00" in again.text()  # it says what the first one made
    shot(page, "refund-06-double-submit")
    made = [r for r in stripe_refunds(order) if r["amount"] == 200]
    assert len(stripe_refunds(order)) == in_stripe + 1 and len(made) == 1
    assert order.refunds.filter(amount=200).count() == 1
    order.refresh_from_db()
    assert order.amount_refunded == 700
    assert len(posts) >= 1
