"""The hosted checkout page in headless chromium (Playwright's sync API)."""

from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    yield context.new_page()
    context.close()


@pytest.fixture
def session_for(client, fakestripe):
    def make(currency="usd", unit_amount=2000, quantity=1, mode="payment"):
        price = client.v1.prices.create(
            params={
                "currency": currency,
                "unit_amount": unit_amount,
                "product_data": {"name": "Poster"},
                **({"recurring": {"interval": "month"}} if mode == "subscription" else {}),
            }
        )
        return client.v1.checkout.sessions.create(
            params={
                "mode": mode,
                "line_items": [{"price": price.id, "quantity": quantity}],
                "success_url": f"{fakestripe.url}/checkout/done/{{CHECKOUT_SESSION_ID}}?paid=1",
                "cancel_url": f"{fakestripe.url}/checkout/done/cancelled",
                "customer_email": "browser@example.com",
            }
        )

    return make


def test_pay_redirects_to_success_url(page, client, session_for, fakestripe):
    session = session_for(quantity=2)
    page.goto(session.url)
    assert page.locator("#total").inner_text() == "40.00 USD"
    assert "Poster" in page.locator(".line-item").inner_text()
    page.fill("input[name=card]", "4242 4242 4242 4242")
    page.click("#pay")
    page.wait_for_url(f"{fakestripe.url}/checkout/done/{session.id}?paid=1")
    paid = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert paid.status == "complete" and paid.payment_intent.status == "succeeded"
    # Paying again is refused by the page itself.
    page.goto(session.url)
    assert "already paid" in page.locator("#status").inner_text()


def test_decline_shows_the_error_then_pays(page, client, session_for, fakestripe):
    session = session_for(currency="jpy", unit_amount=1500)
    page.goto(session.url)
    assert page.locator("#total").inner_text() == "1,500 JPY"
    page.fill("input[name=card]", "4000000000000002")
    page.click("#pay")
    assert page.get_by_role("alert").inner_text() == "Your card was declined."
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    page.fill("input[name=card]", "4000 0000 0000 9995")
    page.click("#pay")
    assert page.get_by_role("alert").inner_text() == "Your card has insufficient funds."
    page.fill("input[name=card]", "4242424242424242")
    page.click("#pay")
    page.wait_for_url(f"{fakestripe.url}/checkout/done/{session.id}?paid=1")
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


def test_cancel_link(page, client, session_for, fakestripe):
    session = session_for()
    page.goto(session.url)
    page.click("#cancel")
    page.wait_for_url(f"{fakestripe.url}/checkout/done/cancelled")
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_expired_session_page(page, client, session_for):
    session = session_for(mode="subscription", unit_amount=900)
    url = session.url
    client.v1.checkout.sessions.expire(session.id)
    page.goto(url)
    assert "expired" in page.locator("#status").inner_text()
    assert page.locator("input[name=card]").count() == 0


def test_pay_by_bank_account_says_processing_then_paid(page, client, session_for, fakestripe):
    session = session_for()
    page.goto(session.url)
    page.check("#method-bank")
    page.fill("input[name=bank_account]", "000123456789")
    page.click("#pay")
    page.wait_for_url(f"{fakestripe.url}/checkout/done/{session.id}?paid=1")
    assert "processing" in page.inner_text("body")
    paid = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert paid.payment_status == "unpaid" and paid.payment_intent.status == "processing"
    page.goto(session.url)
    assert "Your payment is processing" in page.locator("#status").inner_text()
    fakestripe.settle_payment(paid.payment_intent.id)
    page.goto(session.url)
    assert "already paid" in page.locator("#status").inner_text()
