"""The Content-Security-Policy breaks nothing people use: headless chromium walks the customer
pages, Stripe Checkout (the emulator's hosted page, reached by a form's redirect), and every
admin page, and the browser reports no policy violation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from orders.models import Order
from tests.admin_pages import admin_urls
from tests.orders.test_browser import (
    GOOD_CARD,
    click_buy,
    expect_fulfilled,
    pay,
    sign_up,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture
def watched(browser, catalog, live_webhook_endpoint, site_url):
    """A page, and everything its console and error events said."""
    context = browser.new_context(base_url=site_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    said: list[str] = []
    page.on("console", lambda message: said.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: said.append(f"pageerror: {error}"))
    yield page, said
    context.close()


def violations(said: list[str]) -> list[str]:
    return [line for line in said if "Content Security Policy" in line or "pageerror" in line]


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"csp-{name}.png"), full_page=True)


def test_customer_pages_and_checkout_run_under_the_policy(watched, catalog, stripe_emulator):
    page, said = watched
    sign_up(page, "csp")
    shot(page, "catalog")
    click_buy(page, catalog["usd"])  # the form's 303 to Checkout passes form-action
    shot(page, "checkout")
    pay(page, GOOD_CARD)
    order = expect_fulfilled(page)
    shot(page, "return")
    for path in (
        "/orders/",
        f"/orders/{order.public_id}/",
        "/accounts/password_reset/",
        "/accounts/password_change/",
    ):
        response = page.goto(path)
        assert response.status == 200, path
    page.goto("/")
    page.get_by_role("button", name="Log out").click()
    page.goto("/accounts/login/")
    assert violations(said) == [], said


def test_every_admin_page_runs_under_the_policy(
    watched, admin_user, catalog, stripe_emulator, live_server
):
    page, said = watched
    # given some data behind the admin: a paid order, its events, the endpoint
    from django.test import Client

    from tests.orders.helpers import bought

    client = Client()
    client.force_login(admin_user)
    order = bought(client, catalog["usd"])
    stripe_emulator.complete_checkout(order.checkout_session_id)
    assert stripe_emulator.wait_deliveries(15)
    # when the admin logs in through the form and opens every page
    page.goto(f"/{settings.ADMIN_URL}login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "password")
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(rf"/{settings.ADMIN_URL}$"))
    shot(page, "admin-index")
    statuses = {}
    for url in admin_urls(admin_user):
        response = page.goto(url)
        statuses[url] = response.status
        if url == reverse("billing_api_versions"):
            shot(page, "admin-api-versions")
        if url.endswith(f"/orders/order/{Order.objects.get().pk}/change/"):
            shot(page, "admin-order")
    # then every page answers and the browser reports no policy violation
    assert {url: s for url, s in statuses.items() if s != 200} == {}
    assert len(statuses) > 10
    assert violations(said) == [], said
