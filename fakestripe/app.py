"""The emulator: state, routing, authentication, idempotency, faults and counters.

HTTP-agnostic: `Emulator.handle()` takes a parsed request and returns a `Response`, so the
server module only speaks HTTP. Handlers run under the store lock, one at a time; parsing,
serialising and injected latency happen outside it.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import (  # noqa: F401  (importing a handler module registers its routes)
    api,
    balance,
    bank,
    catalog,
    checkout,
    checkout_complete,
    checkout_page,
    control,
    customers,
    destinations,
    dispute_control,
    disputes,
    endpoints,
    invoices,
    later,
    payment_methods,
    payments,
    receipts,
    refunds,
    subscriptions,
    v2_events,
)
from .calls import Call, Response
from .delivery import Deliveries
from .errors import StripeError, invalid, v2_body
from .events import EventLog
from .faults import Faults, Stats
from .params import decode_body, decode_form
from .search import search
from .store import Store

log = logging.getLogger("fakestripe")
VERSION_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")
NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)
PUBLISHABLE = (
    "This API call cannot be made with a publishable API key. Please use a secret API key. "
    "You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys."
)


@dataclass
class _Route:
    method: str
    template: str
    segments: list[str]
    handler: Callable


@dataclass
class _Remembered:
    """An idempotent request's first answer (or None while it is still running)."""

    signature: tuple
    response: Response | None = None
    at: float = field(default_factory=time.monotonic)


IDEMPOTENCY_TTL = 24 * 3600  # Stripe forgets keys after 24 hours
# URL paths of objects that have no resource path of their own (a thin event's related_object)
OBJECT_PATHS = {"invoice_payment": "invoice_payments"}


class Emulator:
    def __init__(
        self,
        *,
        state_file: str | None = None,
        webhook_retry_base: float = 10.0,
        webhook_max_attempts: int = 8,
        webhook_timeout: float = 10.0,
    ) -> None:
        indexed = {r.object: r.indexed for r in api.REGISTRY.values() if r.indexed}
        self.store = Store(state_file, indexed=indexed)
        self.faults = Faults()
        self.stats = Stats()
        self.events = EventLog(self)
        self.deliveries = Deliveries(
            self,
            retry_base=webhook_retry_base,
            max_attempts=webhook_max_attempts,
            timeout=webhook_timeout,
        )
        self._idempotency: dict[tuple[str, str], _Remembered] = {}
        self._idem_lock = threading.Lock()
        self._routes = self._build_routes()
        self._ticker: threading.Thread | None = None
        self._closing = threading.Event()
        self._wake = threading.Event()

    # -- helpers for handlers --------------------------------------------------------------

    def now(self) -> int:
        return int(time.time())

    def new_id(self, prefix: str) -> str:
        return self.store.ids.new(prefix)

    def object_url(self, obj: dict[str, Any]) -> str:
        """Where the API serves a v1 object (`/v1/checkout/sessions/cs_...`)."""
        kind = obj["object"]
        resource = api.REGISTRY.get(kind)
        path = resource.path if resource is not None and resource.path else None
        path = path or OBJECT_PATHS.get(kind) or kind.replace(".", "/") + "s"
        return f"/v1/{path}/{obj['id']}"

    def reset(self) -> None:
        with self.store.lock:
            self.deliveries.reset()
            self.store.clear()
            self.events.reset()
            self.faults.clear()
            self.stats.reset()
            with self._idem_lock:
                self._idempotency.clear()

    def start_background(self) -> None:
        """Start the ticker that does what Stripe does in the background (`api.background`
        jobs: expiring overdue Checkout Sessions, settling bank debits)."""
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="fakestripe-tick", daemon=True)
            self._ticker.start()

    def wake(self) -> None:
        """Have the ticker look again now (new work may be due sooner than its next tick)."""
        self._wake.set()

    def _tick(self) -> None:
        while not self._closing.is_set():
            delay = 1.0
            for job in api.BACKGROUND:
                try:
                    due = job(self)
                except Exception:
                    log.exception("fakestripe background job %s failed", job.__name__)
                    continue
                if due is not None:
                    delay = min(delay, max(due, 0.0))
            self._wake.wait(delay)
            self._wake.clear()

    def close(self) -> None:
        self._closing.set()
        self._wake.set()
        self.deliveries.stop()
        self.store.close()

    # -- routing ---------------------------------------------------------------------------

    def _build_routes(self) -> dict[tuple, list[_Route]]:
        table: list[tuple[str, str, Callable]] = list(api.ROUTES)
        for resource in api.REGISTRY.values():
            if resource.path is None:
                continue
            base = f"/v1/{resource.path}"
            if resource.create:
                table.append(("POST", base, _bind(api.create, resource)))
            table.append(("GET", base, _bind(api.list_objects, resource)))
            if resource.search_fields is not None:
                table.append(("GET", base + "/search", _bind(search, resource)))
            table.append(("GET", base + "/{id}", _bind_id(api.retrieve, resource)))
            if resource.updatable:
                table.append(("POST", base + "/{id}", _bind_id(api.update, resource)))
            if resource.deletable:
                table.append(("DELETE", base + "/{id}", _bind_id(api.delete, resource)))
        routes = [_Route(m, t, t.strip("/").split("/"), h) for m, t, h in table]
        # Literal segments win over placeholders: /search before /{id}.
        routes.sort(key=lambda r: sum(s.startswith("{") for s in r.segments))
        # Bucketed by (first two segments, length), always literal, so a request looks at
        # a handful of routes rather than all of them.
        buckets: dict[tuple, list[_Route]] = {}
        for candidate in routes:
            key = (*candidate.segments[:2], len(candidate.segments))
            buckets.setdefault(key, []).append(candidate)
        return buckets

    def _match(self, method: str, path: str) -> tuple[_Route | None, dict[str, str], bool]:
        segments = path.strip("/").split("/")
        path_known = False
        for candidate in self._routes.get((*segments[:2], len(segments)), ()):
            values: dict[str, str] = {}
            for pattern, actual in zip(candidate.segments, segments, strict=True):
                if pattern.startswith("{"):
                    values[pattern[1:-1]] = actual
                elif pattern != actual:
                    break
            else:
                if candidate.method == method:
                    return candidate, values, True
                path_known = True
        return None, {}, path_known

    # -- request handling ------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        headers = {k.lower(): v for k, v in headers.items()}
        request_id = "req_" + secrets.token_hex(7)
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        base_url = f"http://{headers.get('host', '127.0.0.1')}"
        try:
            params = decode_form(parts.query)
            if method in ("POST", "PUT", "PATCH"):
                params.update(decode_body(body, headers.get("content-type", "")))
        except StripeError as error:
            response = Response.error(error)
        else:
            call = Call(method, path, params, headers, request_id, base_url)
            try:
                if path.startswith(("/v1/", "/v2/")) or path in ("/v1", "/v2"):
                    response = self._api(call)
                else:
                    response = self._plain(call)
            except Exception:
                # An emulator bug: answer as Stripe's 500 does rather than drop the connection.
                log.exception("fakestripe failed on %s %s", method, target)
                error = StripeError(500, "api_error", f"fakestripe internal error ({request_id}).")
                response = Response.json(500, error.body())
        response.headers["Request-Id"] = request_id
        return response

    def _plain(self, call: Call) -> Response:
        """/_fake control endpoints and the hosted checkout page: no auth, faults, stats."""
        found, values, known = self._match(call.method, call.path)
        if found is None:
            return self._unrecognised(call, known)
        try:
            if not getattr(found.handler, "locked", True):
                return _as_response(found.handler(self, call, **values))
            with self.store.lock:
                return _as_response(found.handler(self, call, **values))
        except StripeError as error:
            return Response.error(error)

    def _api(self, call: Call) -> Response:
        found, values, known = self._match(call.method, call.path)
        template = f"{call.method} {found.template}" if found else f"{call.method} (unrouted)"
        try:
            call.api_key = self._authenticate(call.headers)
            version = call.headers.get("stripe-version")
            if version:
                if not VERSION_FORMAT.match(version):
                    raise invalid(f"Invalid Stripe API version: {version}", param="stripe-version")
                call.api_version = version
            self.faults.before_api_request()
            if found is None:
                response = self._unrecognised(call, known)
            else:
                response = self._idempotent(call, found, values)
        except StripeError as error:
            response = Response.error(error)
        if response.status >= 400 and call.path.startswith("/v2"):
            body = json.dumps(v2_body(json.loads(response.body), response.status))
            response = Response(response.status, body.encode(), response.headers)
        response.headers["Stripe-Version"] = call.api_version
        self.stats.record(template, call.api_version, response.status)
        return response

    def _unrecognised(self, call: Call, known: bool) -> Response:
        message = (
            f"Unrecognized request URL ({call.method}: {call.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/."
        )
        if known:
            message = f"Unrecognized request URL ({call.method}: {call.path})."
        error = StripeError(404, "invalid_request_error", message)
        return Response.json(404, error.body())

    @staticmethod
    def _authenticate(headers: dict[str, str]) -> str:
        auth = headers.get("authorization", "")
        key = ""
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        elif auth.lower().startswith("basic "):
            # curl -u sk_test_...: the key is the user name, the password is empty.
            try:
                key = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        if not key:
            raise StripeError(401, "invalid_request_error", NO_KEY)
        if key.startswith("pk_"):
            raise StripeError(401, "invalid_request_error", PUBLISHABLE)
        if not key.startswith(("sk_test_", "rk_test_")):
            masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:]
            raise StripeError(401, "invalid_request_error", f"Invalid API Key provided: {masked}")
        return key

    def _idempotent(self, call: Call, found: _Route, values: dict[str, str]) -> Response:
        key = call.headers.get("idempotency-key")
        if call.method != "POST" or not key:
            return self._run(call, found, values)
        call.idempotency_key = key
        scope = (call.api_key or "", key)
        signature = (call.method, call.path, json.dumps(call.params, sort_keys=True))
        with self._idem_lock:
            remembered = self._idempotency.get(scope)
            if remembered is not None and time.monotonic() - remembered.at > IDEMPOTENCY_TTL:
                remembered = None
            if remembered is None:
                self._idempotency.pop(scope, None)  # re-inserted at the end, in time order
                self._forget_expired_keys()
                self._idempotency[scope] = _Remembered(signature)
        if remembered is not None:
            return self._replay(remembered, signature, key)
        response = None
        try:
            response = self._run(call, found, values)
        finally:
            with self._idem_lock:
                # Stripe keeps answers once the endpoint ran (successes and card declines),
                # not validation errors, which may be retried with the same key.
                if response is not None and (response.status < 400 or response.status == 402):
                    self._idempotency[scope].response = response
                else:
                    self._idempotency.pop(scope, None)
        response.headers["Idempotency-Key"] = key
        return response

    def _forget_expired_keys(self) -> None:
        """Drop keys older than the TTL; dicts keep insertion order, so stop at a young one."""
        cutoff = time.monotonic() - IDEMPOTENCY_TTL
        while self._idempotency:
            scope, remembered = next(iter(self._idempotency.items()))
            if remembered.at > cutoff:
                break
            del self._idempotency[scope]

    @staticmethod
    def _replay(remembered: _Remembered, signature: tuple, key: str) -> Response:
        if remembered.signature[:2] != signature[:2]:
            first = " ".join(remembered.signature[:2])
            raise StripeError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{first}' vs '{signature[0]} {signature[1]}'). Try using a key "
                f"other than '{key}' if you meant to execute a different request.",
            )
        if remembered.signature != signature:
            raise StripeError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
            )
        if remembered.response is None:
            raise StripeError(
                409,
                "idempotency_error",
                "There is currently another in-progress request using this Stripe API key and "
                "idempotency key. Please try again later.",
                code="idempotency_key_in_use",
            )
        first = remembered.response
        headers = dict(first.headers, **{"Idempotent-Replayed": "true"})
        return Response(first.status, first.body, headers)

    def _run(self, call: Call, found: _Route, values: dict[str, str]) -> Response:
        try:
            with self.store.lock:
                return _as_response(found.handler(self, call, **values))
        except StripeError as error:
            return Response.error(error)


def _as_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple):
        return Response.json(result[0], result[1])
    return Response.json(200, result)


def _bind(function: Callable, resource: api.Resource) -> Callable:
    return lambda emu, call: function(emu, call, resource)


def _bind_id(function: Callable, resource: api.Resource) -> Callable:
    return lambda emu, call, id: function(emu, call, resource, id)
