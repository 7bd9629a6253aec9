"""Fixtures for the emulator's own tests: a real stripe-python client and a webhook receiver.

The emulator fixtures come from fakestripe's pytest plugin; they are imported here so these
tests run whether or not the project's root conftest loads the plugin.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe

from fakestripe.pytest_plugin import fakestripe, fakestripe_server  # noqa: F401

API_KEY = "sk_test_fakestripe"


@pytest.fixture
def client(fakestripe) -> stripe.StripeClient:  # noqa: F811
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
