"""Helpers for the thin-event tests: the emulator's deliveries caught as sent (body and
signature), so a test can hand them to the real intake view in the order it chooses."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from billing import stripe_api


class Capture:
    """A loopback receiver standing in for this deployment's public URL: every POST the
    emulator makes to an endpoint or destination under it is recorded with its path (the
    uuid), its body and its Stripe-Signature header, and answered 200."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with capture.lock:
                    capture.requests.append(
                        {
                            "path": self.path,
                            "body": body,
                            "signature": self.headers["Stripe-Signature"],
                        }
                    )
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sent(self, *, event_type: str, object_id: str | None = None, thin: bool) -> list[dict]:
        """Deliveries of one event type (a thin one named ``v1.<type>``), as sent."""
        wanted = f"v1.{event_type}" if thin else event_type
        with self.lock:
            found = []
            for request in self.requests:
                payload = json.loads(request["body"])
                if payload.get("type") != wanted:
                    continue
                about = (
                    (payload.get("related_object") or {}).get("id")
                    if thin
                    else payload["data"]["object"]["id"]
                )
                if object_id is None or about == object_id:
                    found.append({**request, "payload": payload})
            return found

    def wait_for(self, *, event_type: str, thin: bool, object_id: str | None = None, count=1):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            found = self.sent(event_type=event_type, object_id=object_id, thin=thin)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{event_type} ({'thin' if thin else 'snapshot'}) never sent")

    def wait_id(self, event_id: str) -> dict:
        """The first delivery of one event (by id), once sent."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with self.lock:
                for request in self.requests:
                    payload = json.loads(request["body"])
                    if payload.get("id") == event_id:
                        return {**request, "payload": payload}
            time.sleep(0.05)
        raise AssertionError(f"{event_id} never sent")


@pytest.fixture(name="capture")
def capture_fixture():
    """Import ``capture_fixture`` into a test module to use the ``capture`` fixture."""
    receiver = Capture()
    yield receiver
    receiver.close()


def deliver(client, request: dict, *, body: bytes | None = None, signature: str | None = None):
    """POST a caught delivery (or a variation of it) to the real intake view, at the URL it
    was sent to."""
    return client.post(
        request["path"],
        data=body if body is not None else request["body"],
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature if signature is not None else request["signature"],
    )


def signed(payload: dict, secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    body = json.dumps(payload)
    header = stripe_api.signature_header(
        payload=body, secret=secret, timestamp=timestamp or int(time.time())
    )
    return body.encode(), header


def route_calls(emulator, route: str) -> int:
    """Requests the emulator answered on one route (e.g. ``GET /v1/customers/{id}``)."""
    return emulator.stats()["by_route"].get(route, 0)
