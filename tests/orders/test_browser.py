"""A customer in a real browser: headless chromium driven by Playwright, against the live
server and fakestripe's hosted checkout page, with webhooks delivered to the live server.

Every flow runs on a desktop (1280 px) and a phone (390 px) viewport; screenshots of each step
go to tests/artifacts/browser/, and every page visited is checked to be no wider than the
viewport.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from orders.demo_files import demo_file
from orders.models import Order, OrderHistory
from tests.orders.helpers import stripe_obj

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
PASSWORD = "correct-horse-battery-9"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "browser"
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
# Times on the pages must be in the browser's zone, named: Berlin in November is CET.
BROWSER_ZONE = "Europe/Berlin"


class Customer:
    """One browser tab with the steps a customer takes, a screenshot after each, and the
    width check on every page it sees."""

    def __init__(self, page, name: str):
        self.page = page
        self.name = name
        self.shots: list[Path] = []

    def shot(self, step: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)

    def fits(self) -> None:
        """No horizontal scrolling: the page is no wider than the viewport."""
        # Against the viewport's width: a phone's window.innerWidth grows with a wide page.
        screen = self.page.viewport_size["width"]
        width = self.page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= screen, f"{self.page.url} is {width} px wide on a {screen} px screen"

    def see(self, step: str) -> None:
        self.fits()
        self.shot(step)

    def visit(self, path: str, status: int = 200) -> None:
        response = self.page.goto(path)
        assert response.status == status, f"{path} answered {response.status}"

    def log_in(self, username: str) -> None:
        """A customer with an account logs in through the login page. (Creating the account
        is the sign-up flow's own test; these flows start once the customer has one.)"""
        get_user_model().objects.create_user(
            username=username, email=f"{username}@example.com", password=PASSWORD
        )
        page = self.page
        page.goto("/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("#login")
        page.wait_for_url(re.compile(r"/$"))
        assert page.locator(".site-nav").get_by_text("Log out").is_visible()

    def buy(self, price_id: str, quantity: int | None = None) -> None:
        page = self.page
        if not re.search(r"/$", page.url):
            page.goto("/")
        form = page.locator(f'[data-price="{price_id}"] form')
        if quantity is not None:
            form.locator("input[name=quantity]").fill(str(quantity))
        form.locator("button[name=buy]").click()
        page.wait_for_url(re.compile(r"/checkout/pay/cs_"))

    def pay(self, card: str = GOOD_CARD) -> None:
        self.page.fill("#card", card)
        self.page.click("#pay")

    def expect_confirmed(self) -> Order:
        page = self.page
        page.wait_for_url(re.compile(r"/orders/ord_\w+/return/\?session_id=cs_"))
        assert page.locator("h1").inner_text() == "Thank you, your payment is confirmed"
        assert page.locator("#order-status").inner_text() == "Complete"
        order = Order.objects.get(public_id=re.search(r"(ord_\w+)", page.url).group(1))
        assert order.status == Order.Status.FULFILLED
        assert order.history.filter(to_status=Order.Status.PAID).count() == 1
        return order

    def history(self) -> list[str]:
        return [t.strip() for t in self.page.locator("#history li span").all_inner_texts()]


@pytest.fixture(params=list(VIEWPORTS))
def customer(request, browser, catalog, site_url):
    context = browser.new_context(
        base_url=site_url, timezone_id=BROWSER_ZONE, locale="en-GB", **VIEWPORTS[request.param]
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield Customer(page, request.node.name.replace("[", "-").rstrip("]"))
    context.close()


@pytest.fixture
def webhooks(live_webhook_endpoint, stripe_emulator):
    """Webhooks from the emulator reach the live server (processed in process, eagerly)."""
    return stripe_emulator


def test_buy_pay_and_read_the_order(customer, catalog, webhooks):
    page = customer.page
    customer.log_in("alice")
    customer.see("catalog")
    customer.buy(catalog["usd"])
    assert page.locator("#total").inner_text() == "19.00 USD"  # fakestripe's own format
    customer.see("checkout")
    customer.pay()
    order = customer.expect_confirmed()
    customer.see("return-confirmed")
    assert webhooks.wait_deliveries(15)

    # the list shows a short order number and the status in words
    page.goto("/orders/")
    row = page.locator(f'[data-order="{order.public_id}"]')
    assert row.locator(".number").inner_text() == f"Order {order.number}"
    assert re.fullmatch(r"Order [0-9A-F]{8}", row.locator(".number").inner_text())
    assert row.locator(".status").inner_text() == "Complete"
    customer.see("orders")

    # the order page: money formatted, times in the browser's zone with its name, history in
    # the customer's words, no internal text
    page.goto(f"/orders/{order.public_id}/")
    assert page.locator("#order-total").inner_text() == "$19.00"
    placed = page.locator(".summary time").first.inner_text()
    assert re.fullmatch(r"\d{1,2} \w{3} \d{4}, \d{2}:\d{2} CES?T", placed), placed
    assert customer.history() == ["Order placed", "Payment received", "Order complete"]
    body = page.locator("main").inner_text()
    for internal in ("awaiting_payment", "price_", "cs_", "sub_", "evt_", "ord_"):
        assert internal not in body
    customer.see("order")

    # the receipt link opens Stripe's (the emulator's) receipt page for this payment
    with page.context.expect_page() as opened:
        page.click("#receipt")
    receipt = opened.value
    receipt.wait_for_load_state()
    assert "/receipts/payment/ch_" in receipt.url
    assert receipt.locator("h1").inner_text().startswith("Receipt from")
    assert receipt.locator("#amount-paid").inner_text() == "19.00 USD"
    assert "1 x Field Guide to Stripe Webhooks (ebook)" in receipt.content()
    receipt.screenshot(path=str(ARTIFACTS / f"{customer.name}-receipt.png"), full_page=True)


def test_declined_card_then_a_good_one(customer, catalog, webhooks):
    customer.log_in("bob")
    customer.buy(catalog["jpy"])
    assert customer.page.locator("#total").inner_text() == "1,500 JPY"  # zero-decimal
    customer.pay(DECLINED_CARD)
    assert "declined" in customer.page.get_by_role("alert").inner_text()
    assert Order.objects.get(user__username="bob").status == Order.Status.AWAITING_PAYMENT
    customer.pay()
    order = customer.expect_confirmed()
    # the receipt is the successful charge's, not the declined one's
    assert webhooks.wait_deliveries(15)
    customer.page.goto(f"/orders/{order.public_id}/")
    receipt = customer.page.locator("#receipt").get_attribute("href")
    charge = stripe_obj("payment_intent", order.payment_intent_id)["latest_charge"]
    assert receipt.endswith(f"/receipts/payment/{charge}")


def test_change_quantity_after_back(customer, catalog, webhooks):
    # Given a customer on Checkout for one copy
    page = customer.page
    customer.log_in("erin")
    customer.buy(catalog["usd"], quantity=1)
    assert page.locator("#total").inner_text() == "19.00 USD"
    first = Order.objects.get(user__username="erin")

    # When they go Back, choose 3 and press Buy again
    page.go_back()
    page.wait_for_url(re.compile(r"/$"))
    customer.buy(catalog["usd"], quantity=3)

    # Then Checkout asks for 3, and the first order is replaced, its session closed in Stripe
    assert page.locator("#total").inner_text() == "57.00 USD"
    customer.shot("checkout-for-three")
    first.refresh_from_db()
    assert first.status == Order.Status.CANCELED and first.replaced_by is not None
    assert stripe_obj("checkout.session", first.checkout_session_id)["status"] == "expired"
    customer.pay()
    order = customer.expect_confirmed()
    assert order.items.get().quantity == 3 and order.amount_total == 5700
    # and the customer sees one order, not a pile
    page.goto("/orders/")
    assert page.locator(".order").count() == 1
    customer.see("orders-one")
    # the replaced order, if they find it, says what became of it, and nothing more
    page.goto(f"/orders/{first.public_id}/")
    assert customer.history() == ["Order placed", "Replaced by your newer order"]


def test_cancel_an_unpaid_order(customer, catalog, webhooks):
    # Given an order left on Checkout with "Cancel and go back"
    page = customer.page
    customer.log_in("carol")
    customer.buy(catalog["eur"])
    checkout_url = page.url
    page.click("#cancel")
    page.wait_for_url(re.compile(r"/orders/ord_\w+/cancel/$"))
    assert page.locator("#order-status").inner_text() == "Awaiting payment"
    customer.see("left-checkout")

    # When they cancel the order, confirming on the next page
    page.click("#cancel-order")
    page.wait_for_url(re.compile(r"/cancel-order/$"))
    customer.see("confirm-cancel")
    page.click("#confirm-cancel-order")
    page.wait_for_url(re.compile(r"/orders/ord_\w+/$"))

    # Then it is cancelled, its Checkout Session can no longer be paid, and nothing charged
    assert "is cancelled. Nothing was charged." in page.get_by_role("status").inner_text()
    assert page.locator("#order-status").inner_text() == "Cancelled"
    assert customer.history()[-1] == "You cancelled this order"
    assert page.locator("#pay-again").count() == 0
    customer.see("cancelled")
    order = Order.objects.get(user__username="carol")
    assert order.status == Order.Status.CANCELED
    assert stripe_obj("checkout.session", order.checkout_session_id)["status"] == "expired"
    page.goto(checkout_url)
    assert "expired" in page.locator("#status").inner_text()


def test_cancel_and_resume_a_subscription(customer, catalog, webhooks):
    page = customer.page
    customer.log_in("dave")
    customer.buy(catalog["monthly"])
    customer.pay()
    order = customer.expect_confirmed()
    assert webhooks.wait_deliveries(15)
    page.goto(f"/orders/{order.public_id}/")
    assert page.locator("#subscription-status").inner_text() == "Active"
    renewal = page.locator("#subscription-renewal").inner_text()
    customer.see("subscription-active")
    # its invoice is Stripe's (the emulator's) hosted invoice page, paid
    assert page.locator("#receipt").inner_text() == "View your invoice"
    invoice = page.context.new_page()
    invoice.goto(page.locator("#receipt").get_attribute("href"))
    assert invoice.locator("#invoice-status").inner_text() == "Paid"
    assert "Pro membership" in invoice.content()
    invoice.close()

    # Cancel asks first, saying until when it is kept
    page.click("#cancel-subscription")
    page.wait_for_url(re.compile(r"/subscription/cancel/$"))
    assert page.locator("#period-end").inner_text() == renewal
    customer.see("subscription-confirm-cancel")
    page.click("#confirm-cancel-subscription")
    page.wait_for_url(re.compile(rf"/orders/{order.public_id}/$"))
    assert "You can resume it until then" in page.get_by_role("status").inner_text()
    assert page.locator("#subscription-status").inner_text() == "Ending"
    assert page.locator("#subscription-ends").inner_text().startswith(f"Ends on {renewal}")
    assert stripe_obj("subscription", order.subscription_id)["cancel_at_period_end"] is True
    assert customer.history()[-1] == f"Subscription will end on {renewal}"
    customer.see("subscription-ending")

    # Resume undoes it before the period ends
    page.click("#resume-subscription")
    page.wait_for_url(re.compile(rf"/orders/{order.public_id}/$"))
    assert page.locator("#subscription-renewal").inner_text() == renewal
    assert stripe_obj("subscription", order.subscription_id)["cancel_at_period_end"] is False
    assert customer.history()[-1] == f"Subscription resumed: it renews on {renewal}"
    customer.see("subscription-resumed")
    # the webhooks for both changes arrive later and add nothing the customer reads twice
    assert webhooks.wait_deliveries(15)
    page.reload()
    assert customer.history().count(f"Subscription will end on {renewal}") == 1


def test_pages_answer_during_a_stripe_outage(customer, catalog, stripe_emulator):
    """Stripe slow (5 s) and failing (500s): the customer is told what to do within 10 s, in
    words, without Stripe's own text; after paying, the return page says the payment is being
    confirmed and updates itself once Stripe answers again."""
    page = customer.page
    customer.log_in("frank")
    stripe_emulator.set_faults(latency=5, error_rate=1.0)
    started = time.monotonic()
    customer.page.locator(f'[data-price="{catalog["usd"]}"] button[name=buy]').click()
    alert = page.get_by_role("alert")
    assert "The payment service is not answering; your card was not charged" in alert.inner_text()
    assert time.monotonic() - started < 10
    assert "Stripe" not in alert.inner_text()
    customer.see("outage-buy")

    # Stripe is back; the customer pays; Stripe fails again before they return
    stripe_emulator.clear_faults()
    customer.buy(catalog["usd"])
    stripe_emulator.set_faults(latency=5, error_rate=1.0)
    started = time.monotonic()
    customer.pay()
    page.wait_for_url(re.compile(r"/return/\?session_id=cs_"))
    assert time.monotonic() - started < 10
    assert page.locator("h1").inner_text() == "Confirming your payment"
    customer.see("outage-return")
    # When Stripe answers again, the page confirms by itself (it refreshes)
    stripe_emulator.clear_faults()
    page.wait_for_selector("text=Thank you, your payment is confirmed", timeout=20_000)
    customer.see("outage-return-confirmed")


def test_every_customer_page_fits_a_phone(browser, catalog, site_url, stripe_emulator, webhooks):
    """Each page a customer can reach, in each state it has, at 390 px: nothing wider."""
    context = browser.new_context(base_url=site_url, timezone_id=BROWSER_ZONE, **VIEWPORTS["phone"])
    page = context.new_page()
    customer = Customer(page, "every-page-phone")
    try:
        for path, status in (("/", 200), ("/accounts/login/", 200), ("/signup/", 200),
                             ("/accounts/password_reset/", 200),
                             ("/accounts/password_reset/done/", 200),
                             ("/accounts/reset/MQ/set-password/", 200),  # an expired link
                             ("/accounts/reset/done/", 200), ("/no-such-page/", 404)):  # fmt: skip
            customer.visit(path, status)
            customer.see(path.strip("/").replace("/", "_") or "catalog-anonymous")
        customer.log_in("grace")
        # a paid order, a subscription, an unpaid one, a replaced one and a cancelled one
        customer.buy(catalog["usd"], quantity=2)
        customer.pay()
        paid = customer.expect_confirmed()
        customer.see("return-confirmed")
        customer.buy(catalog["monthly"])
        customer.pay()
        subscription = customer.expect_confirmed()
        customer.buy(catalog["eur"], quantity=1)
        customer.buy(catalog["eur"], quantity=5)
        unpaid = Order.objects.filter(user__username="grace", status="awaiting_payment").get()
        replaced = Order.objects.get(replaced_by=unpaid)
        customer.buy(catalog["jpy"])
        page.click("#cancel")
        page.wait_for_url(re.compile(r"/cancel/$"))
        customer.see("left-checkout")
        page.click("#cancel-order")
        customer.see("confirm-cancel-order")
        page.click("#confirm-cancel-order")
        page.wait_for_url(re.compile(r"/orders/ord_\w+/$"))
        assert webhooks.wait_deliveries(15)
        pages = {
            "orders": "/orders/",
            "order-paid": f"/orders/{paid.public_id}/",
            "order-subscription": f"/orders/{subscription.public_id}/",
            "order-unpaid": f"/orders/{unpaid.public_id}/",
            "order-replaced": f"/orders/{replaced.public_id}/",
            "return-waiting": f"/orders/{unpaid.public_id}/return/?session_id=cs_x",
            "confirm-cancel-subscription": f"/orders/{subscription.public_id}/subscription/cancel/",
            "account": "/account/",
            "password-change": "/accounts/password_change/",
            "password-changed": "/accounts/password_change/done/",
            "catalog": "/",
        }
        for step, path in pages.items():
            customer.visit(path)
            customer.see(step)
        customer.visit("/orders/ord_00000000000000000000/", 404)
        customer.see("another-customers-order")
        assert OrderHistory.objects.filter(order=replaced, kind="replaced").exists()
    finally:
        context.close()


def test_buy_an_ebook_download_it_and_another_customer_is_refused(
    customer, catalog, webhooks, download_files, browser, site_url
):
    page = customer.page
    customer.log_in("dora")
    customer.buy(catalog["usd"])
    customer.pay()
    order = customer.expect_confirmed()
    page.goto(f"/orders/{order.public_id}/")
    link = page.locator("#downloads a.download-link")
    assert link.inner_text() == "Download"
    customer.see("order-with-download")
    with page.expect_download() as started:
        link.click()
    saved = started.value.path()
    assert Path(saved).read_bytes() == demo_file("field-guide-to-stripe-webhooks.pdf")
    assert started.value.suggested_filename == "field-guide-to-stripe-webhooks.pdf"
    page.reload()
    assert page.locator("#downloads .download-count").inner_text() == "1"
    href = page.locator("#downloads a.download-link").get_attribute("href")

    # another customer, signed in in their own browser, opening the same link is refused
    other = Customer(browser.new_context(base_url=site_url).new_page(), f"{customer.name}-other")
    try:
        other.log_in("eve")
        response = other.page.goto(href)
        assert response.status == 403
        assert "Content-Disposition" not in response.headers
        other.shot("download-refused")
    finally:
        other.page.context.close()


def test_a_member_is_offered_manage_instead_of_a_second_subscribe(customer, catalog, webhooks):
    page = customer.page
    customer.log_in("mona")
    customer.buy(catalog["monthly"])
    customer.pay()
    order = customer.expect_confirmed()
    page.goto("/")
    plan = page.locator(f'[data-price="{catalog["monthly"]}"]')
    assert plan.locator(".your-plan").inner_text() == "Your plan"
    assert plan.locator("button[name=buy]").count() == 0
    plan.locator("a.manage-plan").click()
    page.wait_for_url(re.compile(rf"/orders/{order.public_id}/$"))
    customer.see("member-manage")
