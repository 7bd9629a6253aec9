"""Every request to Stripe carries the pinned API version, dj-stripe's own fetches included,
and every stored event keeps the version it was rendered at."""

from __future__ import annotations

import pytest
import stripe
from django.test import Client

from billing.models import InboundEvent
from orders.demo import demo_catalog_seed
from orders.models import Order
from orders.services import catalog_sync
from tests.orders.helpers import bought

# Not fakestripe's default (2026-08-26.dahlia), so a request without the header would show.
PINNED = "2026-05-27.dahlia"


@pytest.mark.django_db(transaction=True)
def test_every_request_of_a_paid_order_carries_the_pinned_version(
    settings, stripe_emulator, live_server, django_user_model
):
    # given the product pinned to a version that is not the emulator's default
    settings.STRIPE_API_VERSION = PINNED
    settings.SITE_URL = live_server.url
    assert stripe.api_version == PINNED  # dj-stripe's module-level client follows the setting
    stripe_emulator.reset_stats()
    from billing.webhooks.endpoints import webhook_endpoint_create

    endpoint = webhook_endpoint_create(base_url=live_server.url)
    # when the catalog is created and mirrored (dj-stripe fetches related objects itself),
    # a customer buys and pays, and the webhooks are processed
    demo_catalog_seed()
    catalog_sync()
    client = Client()
    client.force_login(
        django_user_model.objects.create_user("pinned", "pinned@example.com", "a-long-password")
    )
    from djstripe.models import Price

    price = Price.objects.filter(currency="usd", active=True).first()
    order = bought(client, price.id)
    stripe_emulator.complete_checkout(order.checkout_session_id)
    assert stripe_emulator.wait_deliveries(30)
    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLED
    client.get(f"/orders/{order.public_id}/return/?session_id={order.checkout_session_id}")

    # then the emulator saw every API request at the pinned version and no other
    stats = stripe_emulator.stats()
    assert stats["total"] > 20
    assert stats["by_version"] == {PINNED: stats["total"]}
    # dj-stripe's own fetches (module-level stripe-python) are among them
    assert stats["by_route"].get("GET /v1/account", 0) >= 1
    # and the endpoint, created at the pinned version, brought events stored with it
    assert endpoint.api_version == PINNED
    versions = set(InboundEvent.objects.values_list("api_version", flat=True))
    assert versions == {PINNED}
    assert InboundEvent.objects.filter(type="checkout.session.completed").exists()
