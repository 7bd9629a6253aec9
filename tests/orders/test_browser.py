"""A customer in a real browser: headless chromium driven by Playwright, against the live
server and fakestripe's hosted checkout page, with webhooks delivered to the live server."""

from __future__ import annotations

import re

import pytest

from orders.models import Order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"


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
    assert page.locator("#order-status").inner_text() == "fulfilled"
    order = Order.objects.get(public_id=re.search(r"(ord_\w+)", page.url).group(1))
    assert order.status == Order.Status.FULFILLED
    assert order.history.filter(to_status=Order.Status.PAID).count() == 1
    return order


def test_sign_up_buy_pay_return_and_see_it_fulfilled(page, catalog, stripe_emulator):
    sign_up(page, "alice")
    click_buy(page, catalog["usd"])
    assert page.locator("#total").inner_text() == "19.00 USD"  # fakestripe's own format
    pay(page, GOOD_CARD)
    order = expect_fulfilled(page)
    # the order list and detail show it, with the receipt once the webhook linked the charge
    page.goto("/orders/")
    assert page.locator(f'[data-order="{order.public_id}"] .status').inner_text() == "fulfilled"
    page.goto(f"/orders/{order.public_id}/")
    assert page.locator("#order-total").inner_text() == "$19.00"
    assert stripe_emulator.wait_deliveries(15)
    page.reload()
    assert "/receipts/payment/ch_" in page.locator("#receipt").get_attribute("href")


def test_declined_card_then_a_good_one(page, catalog, stripe_emulator):
    sign_up(page, "bob")
    click_buy(page, catalog["jpy"])
    assert page.locator("#total").inner_text() == "1,500 JPY"  # zero-decimal
    pay(page, DECLINED_CARD)
    assert "declined" in page.get_by_role("alert").inner_text()
    order = Order.objects.get(user__email="bob@example.com")
    assert order.status == Order.Status.AWAITING_PAYMENT
    pay(page, GOOD_CARD)
    expect_fulfilled(page)


def test_cancel_on_checkout_and_pay_again(page, catalog, stripe_emulator):
    sign_up(page, "carol")
    click_buy(page, catalog["eur"])
    checkout_url = page.url
    page.click("#cancel")
    page.wait_for_url(re.compile(r"/orders/ord_\w+/cancel/"))
    assert page.locator("#order-status").inner_text() == "awaiting payment"
    page.click("#pay-again")
    page.wait_for_url(re.compile(r"/checkout/pay/cs_"))
    assert page.url == checkout_url  # the open session is reused
    pay(page, GOOD_CARD)
    expect_fulfilled(page)
    assert Order.objects.filter(user__email="carol@example.com").count() == 1


def test_subscription_purchase_and_cancel_at_period_end(page, catalog, stripe_emulator):
    sign_up(page, "dave")
    click_buy(page, catalog["monthly"])
    pay(page, GOOD_CARD)
    order = expect_fulfilled(page)
    assert stripe_emulator.wait_deliveries(15)
    page.goto(f"/orders/{order.public_id}/")
    assert page.locator("#subscription-status").inner_text() == "active"
    assert page.locator("#subscription-renewal").is_visible()
    page.click("#cancel-subscription")
    page.wait_for_url(re.compile(rf"/orders/{order.public_id}/$"))
    assert "will end at the close of the current period" in page.content()
    assert page.locator("#subscription-ends").is_visible()
