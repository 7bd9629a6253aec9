"""Support in a real browser (headless chromium, Playwright) against the live server and the
emulator: find an order by a payment intent id a customer quoted, open its payment intent,
edit its Stripe metadata, resync it after a change in Stripe and read the diff. Screenshots
go to tests/artifacts/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from billing import stripe_api
from billing.models import AuditEntry
from tests.admin.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture
def page(browser, live_server, world, staff):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    said: list[str] = []
    page.on("console", lambda message: said.append(message.text))
    yield page
    context.close()
    # Every console page, form and confirmation keeps to the Content-Security-Policy.
    assert [m for m in said if "Content Security Policy" in m or "Refused to" in m] == []


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


def log_in(page, username: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/$"))


def test_find_an_order_by_a_payment_intent_then_edit_metadata_and_resync(page, world, staff):
    intent_id = world.paid.payment_intent_id
    log_in(page, "billing")
    shot(page, "01-index")
    assert page.locator("#content-main .module caption").first.inner_text().lower() == "orders"

    # Find the order by the pi_ id the customer quoted
    page.locator("#content-main a[href='/admin/orders/order/']").first.click()
    page.fill("#searchbar", intent_id)
    page.press("#searchbar", "Enter")
    page.wait_for_url(re.compile(r"\?q=pi_"))
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert world.paid.public_id in rows.first.inner_text()
    shot(page, "02-order-search")
    rows.first.locator("th a").click()
    page.wait_for_selector("#stripe-objects")
    shot(page, "03-order-page")
    assert "partially refunded" in page.locator("#stripe-objects").inner_text()
    assert page.locator("#timeline tbody tr").count() > 5

    # Open its payment intent from the order's Stripe objects
    page.locator(f"#stripe-objects a:text-is('{intent_id}')").click()
    page.wait_for_selector("#edit-metadata")
    assert page.locator("h2").first.inner_text().startswith(intent_id)

    # Edit Stripe metadata: add a note
    page.click("#edit-metadata")
    page.wait_for_selector("#metadata-rows")
    shot(page, "04-metadata-form")
    empty = page.locator("#metadata-rows input[name=key]").nth(2)
    empty.fill("support_note")
    page.locator("#metadata-rows input[name=value]").nth(2).fill("customer called about the refund")
    page.click("#save-metadata")
    page.wait_for_selector(".messagelist .success")
    assert "Saved in Stripe: support_note" in page.locator(".messagelist").inner_text()
    assert "customer called about the refund" in page.locator("#metadata").inner_text()
    shot(page, "05-metadata-saved")
    held = stripe_api.as_dict(
        stripe_api.retrieve(object_type="payment_intent", stripe_id=intent_id)
    )
    assert held["metadata"]["support_note"] == "customer called about the refund"

    # Something changes in Stripe (the Dashboard, say); Resync from Stripe shows the diff
    stripe_api.update(
        object_type="payment_intent",
        stripe_id=intent_id,
        params={"description": "Refund agreed by phone", "metadata": {"support_note": "done"}},
    )
    page.click("#resync")
    page.wait_for_selector(".messagelist .success")
    assert "2 field(s) changed" in page.locator(".messagelist").inner_text()
    diff = page.locator("#console-log details[open] .console-diff").first.inner_text()
    assert "description" in diff and "Refund agreed by phone" in diff
    assert "metadata.support_note" in diff and "customer called about the refund" in diff
    shot(page, "06-resync-diff")
    entries = AuditEntry.objects.filter(actor=staff.billing).order_by("at")
    assert [e.action for e in entries] == ["metadata_update", "resync"]


def test_link_key_change_is_confirmed_naming_the_order(page, world, staff):
    intent_id = world.paid.payment_intent_id
    log_in(page, "billing")
    page.goto(f"/admin/djstripe/paymentintent/{intent_id}/metadata/")
    row = page.locator("#metadata-rows tr", has=page.locator("input[name=key][value=order_id]"))
    row.locator("input[name=value]").fill(world.declined.public_id)
    page.click("#save-metadata")
    page.wait_for_selector("#link-changes")
    text = page.locator("#link-changes").inner_text()
    assert f"will be linked to order {world.declined.public_id}" in text
    shot(page, "07-link-confirm")
    page.click("#confirm-metadata")
    page.wait_for_selector(".messagelist .success")
    assert world.declined.public_id in page.locator("#metadata").inner_text()


def test_support_without_link_permission_sees_link_keys_locked(page, world):
    log_in(page, "support")
    page.goto(f"/admin/djstripe/paymentintent/{world.paid.payment_intent_id}/")
    assert page.locator("#resync").is_visible() and page.locator("#edit-metadata").is_visible()
    assert page.locator("#reprocess").count() == 0
    shot(page, "08-support-object-page")
    page.click("#edit-metadata")
    page.wait_for_selector("#metadata-rows")
    assert page.locator("#metadata-rows input[name=key][value=order_id][type=hidden]").count() == 1
    shot(page, "09-support-metadata-form")


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.mark.parametrize(
    ("username", "viewport"),
    [
        ("support", PHONE),
        ("billing", PHONE),
        ("billing", {"viewport": {"width": 1280, "height": 900}}),
    ],
)
def test_console_pages_answer_and_fit_the_screen(
    browser, live_server, world, staff, username, viewport
):
    """The pages support opens every day, on a phone and a desktop: each answers 200 and is
    no wider than the screen (a wide table scrolls inside its own box)."""
    context = browser.new_context(base_url=live_server.url, **viewport)
    screen = viewport["viewport"]["width"]  # (a phone's innerWidth grows with the page)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        log_in(page, username)
        order = world.paid
        pages = [
            "/admin/",
            "/admin/orders/order/",
            f"/admin/orders/order/{order.pk}/change/",
            "/admin/orders/orderpayment/",
            "/admin/orders/orderpayment/?flagged=open",
            f"/admin/djstripe/paymentintent/{order.payment_intent_id}/",
            f"/admin/djstripe/customer/{order.customer_id}/",
            "/admin/billing/inboundevent/",
            "/admin/djstripe/charge/",
            "/admin/orders/orderrefund/",
            "/admin/orders/orderdispute/",
        ]
        if username == "billing":
            pages.append("/admin/billing/api-versions/")
        for path in pages:
            response = page.goto(path)
            assert response.status == 200, f"{path} answered {response.status}"
            width = page.evaluate("() => document.documentElement.scrollWidth")
            if path == "/admin/":
                shot(page, f"00-front-page-{username}-{screen}")
            if width > screen:
                wide = page.evaluate(
                    """(screen) => [...document.querySelectorAll('body *')]
                        .filter(e => e.getBoundingClientRect().right > screen + 1)
                        .slice(-5).map(e => e.tagName + '#' + e.id + '.' + e.className)""",
                    screen,
                )
                raise AssertionError(f"{path} is {width} px wide on a {screen} px screen: {wide}")
            if screen >= 1280:
                # and on a desktop every table fits its box: no column clipped or scrolled off
                clipped = page.evaluate(
                    """() => [...document.querySelectorAll('#content table')]
                        .filter(t => t.offsetParent && t.scrollWidth > t.parentElement.clientWidth + 1)
                        .map(t => (t.id || t.className || 'table') + ' ' + t.scrollWidth + '>'
                                  + t.parentElement.clientWidth)"""
                )
                assert clipped == [], f"{path}: tables wider than their box: {clipped}"
            if "/customer/" in path:
                shot(page, f"10-customer-event-history-{username}-{screen}")
    finally:
        context.close()


def test_support_works_from_the_front_page(page, world, staff):
    """The front page as support: the work counts link to their lists, and the one search box
    takes a customer id to the customer's whole account."""
    log_in(page, "support")
    work = page.locator("#work-flagged_payments")
    assert work.locator(".front-count").inner_text() == "1"
    shot(page, "11-front-page-support")
    work.locator("a").click()
    page.wait_for_url(re.compile(r"/admin/orders/orderpayment/\?flagged=yes"))
    assert page.locator("#result_list tbody tr").count() == 1

    page.goto("/admin/")
    page.fill("#front-q", world.paid.customer_id)
    page.press("#front-q", "Enter")
    page.wait_for_url(re.compile(r"/admin/djstripe/customer/cus_"))
    for section in ("orders", "payments", "refunds", "subscriptions", "invoices"):
        assert page.locator(f"#account-{section}").is_visible()
    assert world.paid.public_id in page.locator("#account-orders").inner_text()
    assert page.locator("#event-history tbody tr").count() > 3
    shot(page, "12-customer-account-support")

    # an email finds the customer's orders
    page.goto("/admin/")
    page.fill("#front-q", "shopper@example.com")
    page.press("#front-q", "Enter")
    page.wait_for_url(re.compile(r"/admin/orders/order/"))
    assert world.paid.public_id in page.locator("#content").inner_text()


def test_a_flagged_payment_is_resolved_with_a_note_in_the_browser(page, world, staff):
    """Billing admin resolves the flagged payment (a session naming the unpaid order, for
    another amount) from the order's page: a confirmation that asks how it was handled, then
    the note in the order's timeline."""
    order = world.declined
    log_in(page, "billing")
    page.goto(f"/admin/orders/order/{order.pk}/change/")
    assert "flag" in page.locator("#open-flagged").inner_text().lower()
    page.click("#resolve-flagged")
    page.wait_for_selector("#resolve-note")
    shot(page, "13-resolve-flagged")
    note = "customer paid twice by mistake; refunded the extra in the Dashboard"
    page.fill("#resolve-note", note)
    page.click("#confirm-resolve")
    page.wait_for_url(re.compile(r"/admin/orders/order/[^/]+/change/$"))
    assert "resolved" in page.locator(".messagelist").inner_text().lower()
    assert page.locator("#open-flagged").count() == 0
    assert note in page.locator("#timeline").inner_text()
    shot(page, "14-resolved-in-history")
