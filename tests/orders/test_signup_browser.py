"""Sign-up in a real browser, as a newcomer does it: the address, the link from the email, a
password, then a first purchase paid on fakestripe's hosted checkout page."""

from __future__ import annotations

import re

import pytest

from orders.models import Order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GOOD_CARD = "4242 4242 4242 4242"


@pytest.fixture
def page(browser, catalog, live_webhook_endpoint, site_url):
    context = browser.new_context(base_url=site_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def sign_up(page, username: str) -> None:
    """Sign up as a person does: the address, the link from the email, a password."""
    from django.core import mail

    email = f"{username}@example.com"
    page.goto("/signup/")
    page.fill("input[name=email]", email)
    page.click("#signup")
    page.wait_for_url(re.compile(r"/signup/sent/$"))
    message = next(m for m in reversed(mail.outbox) if m.to == [email])
    page.goto(re.search(r"https?://\S+", message.body).group(0))
    page.fill("input[name=new_password1]", "correct-horse-battery-9")
    page.fill("input[name=new_password2]", "correct-horse-battery-9")
    page.click("#signup-finish")
    page.wait_for_url(re.compile(r"/$"))
    assert f"Welcome, {email}" in page.content()


def click_buy(page, price_id: str) -> None:
    page.goto("/")
    page.locator(f'[data-price="{price_id}"] button[name=buy]').click()
    page.wait_for_url(re.compile(r"/checkout/pay/cs_"))


def pay(page, card: str) -> None:
    page.fill("#card", card)
    page.click("#pay")


def expect_fulfilled(page) -> Order:
    page.wait_for_url(re.compile(r"/orders/ord_\w+/return/\?session_id=cs_"))
    assert page.locator("h1").inner_text() == "Thank you, your payment is confirmed"
    assert page.locator("#order-status").inner_text() == "Complete"
    order = Order.objects.get(public_id=re.search(r"(ord_\w+)", page.url).group(1))
    assert order.status == Order.Status.FULFILLED
    assert order.history.filter(to_status=Order.Status.PAID).count() == 1
    return order


def test_sign_up_then_buy_and_pay(page, catalog, stripe_emulator):
    sign_up(page, "alice")
    click_buy(page, catalog["usd"])
    pay(page, GOOD_CARD)
    order = expect_fulfilled(page)
    page.goto("/orders/")
    assert page.locator(f'[data-order="{order.public_id}"]').is_visible()
