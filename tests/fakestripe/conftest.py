"""Fixtures for the emulator's own tests: a real stripe-python client and a webhook receiver.

The emulator fixtures (`fakestripe`, `fakestripe_server`) come from fakestripe's pytest
plugin, which the root conftest loads.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
import stripe

API_KEY = "sk_test_fakestripe"


@pytest.fixture
def client(fakestripe) -> stripe.StripeClient:
    """stripe-python as the product uses it, without retries so each call is one request."""
    return stripe.StripeClient(API_KEY, base_addresses={"api": fakestripe.url},
                               max_network_retries=0)  # fmt: skip


class Receiver:
    """A loopback webhook receiver: records each POST and answers with scripted statuses."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []  # consumed one per request; 200 when empty
        self.delay = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.requests.append({"headers": dict(self.headers), "body": body})
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if receiver.delay:
                    threading.Event().wait(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def events(self) -> list[dict]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests]

    def types(self) -> list[str]:
        return [e["type"] for e in self.events()]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def endpoint(client, receiver):
    """A webhook endpoint subscribed to every event, pointing at the receiver."""
    return client.v1.webhook_endpoints.create(params={"url": receiver.url, "enabled_events": ["*"]})


@pytest.fixture
def paid_flows(client, fakestripe, prices) -> SimpleNamespace:
    """A product with a one-time and a monthly price (``prices``), a webhook endpoint, and a
    completed Checkout Session of each mode (the payment one with link metadata on its
    intent)."""
    one_time, monthly = prices
    product = client.v1.products.retrieve(one_time.product)
    endpoint = client.v1.webhook_endpoints.create(
        params={"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]}
    )
    pay = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "success_url": "http://127.0.0.1/ok",
            "customer_creation": "always",
            "line_items": [{"price": one_time.id, "quantity": 1}],
            "payment_intent_data": {"metadata": {"order_id": "1"}},
        }
    )
    fakestripe.complete_checkout(pay.id)
    sub = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "success_url": "http://127.0.0.1/ok",
            "line_items": [{"price": monthly.id, "quantity": 1}],
        }
    )
    fakestripe.complete_checkout(sub.id)
    return SimpleNamespace(
        product=product,
        one_time=one_time,
        monthly=monthly,
        endpoint=endpoint,
        pay=client.v1.checkout.sessions.retrieve(pay.id),
        sub=client.v1.checkout.sessions.retrieve(sub.id),
    )


@pytest.fixture
def prices(client):
    """A one-time price ($20.00) and a monthly one ($9.00) of one product, "T-shirt"."""
    product = client.v1.products.create(params={"name": "T-shirt"})
    one_time = client.v1.prices.create(
        params={"product": product.id, "currency": "usd", "unit_amount": 2000}
    )
    monthly = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 900,
            "recurring": {"interval": "month"},
        }
    )
    return one_time, monthly
