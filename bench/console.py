"""Queries per support console page, with one order in the shop and then with many.

Everything goes the production way: orders bought through the checkout service and paid on
the emulator's Checkout (started here, in process), refunds created in Stripe, and every event
delivered, signed, through the real webhook intake and processed. Each page is then opened as
a Billing admin with the Django test client and its SQL queries counted; the same pages are
counted again after many more orders (each with its session, payment intent, charge, refund
and events, all for one customer so the customer's and the order list's pages grow too).

Prints, per page: queries with one order, queries with many, and the ratio (1.00 = flat).

Usage: .venv/bin/python bench/console.py [--orders 40]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fakestripe.client import FakeStripeClient  # noqa: E402
from fakestripe.server import FakeStripeServer  # noqa: E402


def _setup_django(stripe_url: str, db_path: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="true",
        DATABASE_URL=f"sqlite:///{db_path}",
        STRIPE_API_BASE=stripe_url,
        STRIPE_SECRET_KEY="sk_test_benchconsole000000000000",
        DJANGO_LOG_LEVEL="WARNING",
        DJANGO_ALLOWED_HOSTS="testserver",  # the Django test client's host
    )
    os.environ.pop("CELERY_BROKER_URL", None)  # events are processed in process, on commit
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _deliver_new_events(client, endpoint, seen: set[str]) -> int:
    from billing import stripe_api

    emitted = [stripe_api.as_dict(e) for e in stripe_api.list_all(object_type="event")]
    fresh = [e for e in reversed(emitted) if e["id"] not in seen]
    for event in fresh:
        body = json.dumps(event)
        header = stripe_api.signature_header(
            payload=body, secret=endpoint.secret, timestamp=int(time.time())
        )
        response = client.post(
            f"/stripe/webhook/{endpoint.djstripe_uuid}/",
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=header,
        )
        assert response.status_code == 200, (event["id"], response.status_code)
        seen.add(event["id"])
    return len(fresh)


def _buy(user, price_id: str, fake: FakeStripeClient, *, refund: bool):
    from billing import stripe_api
    from orders.models import Order
    from orders.services import order_checkout_start

    step = order_checkout_start(
        user=user, price_id=price_id, quantity=1, request_token=secrets.token_urlsafe(12)
    )
    fake.complete_checkout(step.order.checkout_session_id)
    session = stripe_api.retrieve(
        object_type="checkout.session", stripe_id=step.order.checkout_session_id
    )
    if refund:
        stripe_api.create(
            object_type="refund", params={"payment_intent": session.payment_intent, "amount": 100}
        )
    return Order.objects.get(pk=step.order.pk)


def _pages(order) -> dict[str, str]:
    from django.contrib.admin.utils import quote
    from django.urls import reverse
    from djstripe.models import Charge

    charge = Charge.objects.filter(payment_intent_id=order.payment_intent_id).first()
    pages = {
        "orders: list": reverse("admin:orders_order_changelist"),
        "orders: search by pi_": reverse("admin:orders_order_changelist")
        + f"?q={order.payment_intent_id}",
        "orders: search by email": reverse("admin:orders_order_changelist") + f"?q={order.email}",
        "order page": reverse("admin:orders_order_change", args=[quote(order.public_id)]),
        "customer page": reverse("admin:djstripe_customer_change", args=[quote(order.customer_id)]),
        "charge page": reverse("admin:djstripe_charge_change", args=[quote(charge.id)]),
        "events: list": reverse("admin:billing_inboundevent_changelist"),
        "audit log: list": reverse("admin:billing_auditentry_changelist"),
    }
    for model in ("customer", "session", "paymentintent", "charge", "refund", "price"):
        pages[f"{model}s: list"] = reverse(f"admin:djstripe_{model}_changelist")
    pages["charges: search by pi_"] = (
        reverse("admin:djstripe_charge_changelist") + f"?q={order.payment_intent_id}"
    )
    return pages


def _count(client, pages: dict[str, str]) -> dict[str, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for name, url in pages.items():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, (name, response.status_code)
        counts[name] = len(queries)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=40)
    args = parser.parse_args()

    server = FakeStripeServer(port=0, webhook_max_attempts=1).start()
    fake = FakeStripeClient(server.url)
    with tempfile.TemporaryDirectory() as tmp:
        _setup_django(server.url, f"{tmp}/db.sqlite3")
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.test import Client
        from djstripe.models import Price

        from billing.webhooks.endpoints import webhook_endpoint_create
        from orders.demo import demo_catalog_seed
        from orders.services import catalog_sync
        from orders.staff import BILLING_ADMIN

        demo_catalog_seed()
        catalog_sync()
        price = next(
            p.id for p in Price.objects.filter(currency="usd") if not p.stripe_data.get("recurring")
        )
        endpoint = webhook_endpoint_create(base_url="http://127.0.0.1:9")
        users = get_user_model().objects
        shopper = users.create_user("shopper", email="shopper@example.com", password="x" * 20)
        staff = users.create_user("billing", password="x" * 20, is_staff=True)
        staff.groups.add(Group.objects.get(name=BILLING_ADMIN))
        client = Client()
        client.force_login(staff)
        seen: set[str] = set()

        first = _buy(shopper, price, fake, refund=True)
        _deliver_new_events(client, endpoint, seen)
        first.refresh_from_db()
        pages = _pages(first)
        client.get("/admin/")  # session and content types warm
        small = _count(client, pages)

        started = time.monotonic()
        for n in range(args.orders):
            _buy(shopper, price, fake, refund=n % 2 == 0)
        events = _deliver_new_events(client, endpoint, seen)
        large = _count(client, pages)
        seconds = time.monotonic() - started

    server.stop()
    print(f"queries per page: 1 order, then {args.orders + 1} orders "
          f"({events} more events delivered and processed in {seconds:.0f} s)")  # fmt: skip
    print(f"{'page':<28}{'1 order':>9}{'many':>7}{'ratio':>8}")
    for name in pages:
        print(f"{name:<28}{small[name]:>9}{large[name]:>7}{large[name] / small[name]:>8.2f}")
    worst = max(large[name] / small[name] for name in pages)
    print(f"worst ratio {worst:.2f} (1.00: queries do not grow with rows)")


if __name__ == "__main__":
    main()
