"""Stripe API calls per completed order, checkout to fulfilled: the product vs dj-stripe alone.

Both flows run against one fakestripe (started here, in process) and count API requests with
its stats (`/v1/*` only; the customer paying on the hosted page is not an API call). Both
create the customer and the Checkout Session the same way; they differ in what happens after
the customer pays:

- product: the customer comes back to the return page (which fetches the session once unless
  the order is already paid) while Stripe delivers the subscribed webhooks to the running
  site; the pipeline re-fetches each object once with the expansions handlers need, coalesces
  bursts, and the order is fulfilled by whichever comes first.
- naive: the same webhooks go to a collector; each event is handed to dj-stripe's own
  `Event.process` (its handlers retrieve the object and sync it, fetching each missing related
  object one by one), then the order is fulfilled after retrieving the session, its line items,
  the payment intent and the customer one by one.

Usage: .venv/bin/python bench/checkout.py [--users 10] [--orders-per-user 2]
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import socketserver
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import django_in_process  # noqa: E402
from fakestripe.client import FakeStripeClient  # noqa: E402
from fakestripe.server import FakeStripeServer  # noqa: E402


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Collector(BaseHTTPRequestHandler):
    """The naive flow's webhook URL: keeps each delivered event, answers 200."""

    received: list[dict] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.lock:
            self.received.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def _wait_for(fs: FakeStripeClient) -> None:
    if not fs.wait_deliveries(60):
        raise SystemExit("webhook deliveries did not settle within 60 s")


def _calls(fs: FakeStripeClient) -> int:
    return fs.stats()["total"]


def _buy(client, price_id: str):
    from orders.models import Order

    response = client.post(
        "/buy/", {"price_id": price_id, "quantity": 1, "request_token": secrets.token_urlsafe(24)}
    )
    assert response.status_code == 303, response.content[:500]
    return Order.objects.filter(user_id=client.session["_auth_user_id"]).latest("pk")


def product_flow(fs, users, price_id: str, per_user: int) -> tuple[int, int, dict]:
    from django.test import Client

    from orders.models import Order

    before = fs.stats()
    orders = []
    for user in users:
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        for _ in range(per_user):
            order = _buy(client, price_id)
            fs.complete_checkout(order.checkout_session_id)
            # The customer's browser follows the redirect at once, racing the webhooks.
            client.get(f"/orders/{order.public_id}/return/?session_id={order.checkout_session_id}")
            orders.append(order.pk)
    _wait_for(fs)
    after = fs.stats()
    fulfilled = Order.objects.filter(pk__in=orders, status=Order.Status.FULFILLED).count()
    routes = {
        k: v - before["by_route"].get(k, 0)
        for k, v in after["by_route"].items()
        if v - before["by_route"].get(k, 0)
    }
    return after["total"] - before["total"], fulfilled, routes


def naive_flow(fs, users, price_id: str, per_user: int) -> tuple[int, int, int, dict]:
    import stripe
    from django.conf import settings
    from django.test import Client
    from djstripe.models import Event

    from billing import stripe_api
    from orders import services
    from orders.models import Order

    stripe.api_key = settings.STRIPE_SECRET_KEY
    before = fs.stats()
    orders, errors = [], 0
    error_kinds: Counter[str] = Counter()
    for user in users:
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        for _ in range(per_user):
            order = _buy(client, price_id)
            fs.complete_checkout(order.checkout_session_id)
            orders.append(order.pk)
    _wait_for(fs)
    with _Collector.lock:
        received = sorted(_Collector.received, key=lambda e: e["created"])
        _Collector.received.clear()
    for payload in received:
        try:
            Event.process(data=payload)
        except Exception as exc:
            errors += 1
            reason = str(exc).split(": ", 1)[-1][:90]  # without the request id
            error_kinds[f"{payload['type']}: {type(exc).__name__}: {reason}"] += 1
        if payload["type"] == "checkout.session.completed":
            session_id = payload["data"]["object"]["id"]
            session = stripe.checkout.Session.retrieve(session_id)
            stripe.checkout.Session.list_line_items(session_id)
            stripe.PaymentIntent.retrieve(session.payment_intent)
            stripe.Customer.retrieve(session.customer)
            services.order_session_apply(session=stripe_api.as_dict(session), source="naive bench")
    after = fs.stats()
    fulfilled = Order.objects.filter(pk__in=orders, status=Order.Status.FULFILLED).count()
    routes = {
        k: v - before["by_route"].get(k, 0)
        for k, v in after["by_route"].items()
        if v - before["by_route"].get(k, 0)
    }
    return after["total"] - before["total"], fulfilled, dict(error_kinds), routes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--orders-per-user", type=int, default=2)
    args = parser.parse_args()
    n_orders = args.users * args.orders_per_user

    tmp = tempfile.mkdtemp(prefix="bench-checkout-")
    fake = FakeStripeServer("127.0.0.1", 0, webhook_retry_base=0.05, webhook_timeout=10).start()
    fs = FakeStripeClient(fake.url)
    # Failures are counted, not retried here: a retry would only add calls to both sides.
    django_in_process(
        stripe_url=fake.url, db_path=f"{tmp}/db.sqlite3", BILLING_EVENT_MAX_ATTEMPTS="1"
    )

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.handlers.wsgi import WSGIHandler

    from billing import stripe_api
    from billing.webhooks import registry
    from billing.webhooks.endpoints import webhook_endpoint_create
    from orders.demo import demo_catalog_seed
    from orders.models import Order
    from orders.services import catalog_sync

    site = make_server("127.0.0.1", 0, WSGIHandler(), _ThreadingWSGIServer, _QuietHandler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    settings.SITE_URL = f"http://127.0.0.1:{site.server_port}"
    collector = HTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()

    demo_catalog_seed()
    catalog_sync()
    price_id = next(
        p.id
        for p in stripe_api.list_all(object_type="price")
        if p.currency == "usd" and not p.recurring
    )
    make = get_user_model().objects.create_user

    # --- product: webhooks to the site, return page racing them
    endpoint = webhook_endpoint_create(base_url=settings.SITE_URL)
    product_users = [make(username=f"p{i}", email=f"p{i}@example.com") for i in range(args.users)]
    t0 = time.monotonic()
    product_calls, product_done, product_routes = product_flow(
        fs, product_users, price_id, args.orders_per_user
    )
    product_secs = time.monotonic() - t0
    stripe_api.delete(object_type="webhook_endpoint", stripe_id=endpoint.id)

    # --- naive: the same events, handled by dj-stripe alone

    stripe_api.create(
        object_type="webhook_endpoint",
        params={
            "url": f"http://127.0.0.1:{collector.server_port}/",
            "enabled_events": registry.subscribed_event_types(),
        },
    )
    naive_users = [make(username=f"n{i}", email=f"n{i}@example.com") for i in range(args.users)]
    t0 = time.monotonic()
    naive_calls, naive_done, naive_errors, naive_routes = naive_flow(
        fs, naive_users, price_id, args.orders_per_user
    )
    naive_secs = time.monotonic() - t0

    print(f"checkout to fulfilled, {n_orders} one-time orders ({args.users} users x "
          f"{args.orders_per_user}), Stripe API calls counted by fakestripe")  # fmt: skip
    print(f"  product: {product_calls:4d} calls, {product_calls / n_orders:5.2f} per order "
          f"({product_done}/{n_orders} fulfilled, {product_secs:.1f}s)")  # fmt: skip
    print(f"  naive:   {naive_calls:4d} calls, {naive_calls / n_orders:5.2f} per order "
          f"({naive_done}/{n_orders} fulfilled, {sum(naive_errors.values())} dj-stripe errors, "
          f"{naive_secs:.1f}s)")  # fmt: skip
    if naive_calls:
        saved = 1 - product_calls / naive_calls
        print(f"  the product makes {saved:.0%} fewer calls "
              f"({naive_calls / max(product_calls, 1):.1f}x fewer)")  # fmt: skip
    for kind, count in naive_errors.items():
        print(f"    naive error x{count}: {kind}")
    print("  product calls by route:", json.dumps(product_routes, sort_keys=True))
    print("  naive calls by route:  ", json.dumps(naive_routes, sort_keys=True))
    failed = Order.objects.exclude(status=Order.Status.FULFILLED).count()
    site.shutdown()
    collector.shutdown()
    fake.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        raise SystemExit(f"{failed} orders were not fulfilled")


if __name__ == "__main__":
    main()
