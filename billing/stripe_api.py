"""The only module that calls stripe-python.

Every call goes through ``_call``: one pinned API version, the key passed per client (never
module-global state of ours), an idempotency key on every POST (derived from the business
identity for creates, random otherwise, the same across retries), the one retry policy
(``retry_delay``: 429s, 409s, 5xx and timeouts, honouring Retry-After where sent), an optional
client-side rate limit (``throttle``), call counting, and ``StripeError`` turned into
``StripeAPIError`` with a message a person can act on.

stripe-python's own retries are off (they would retry inside ours, and do not retry Stripe's
rate-limit 429s: those carry no ``Stripe-Should-Retry``). dj-stripe's own fetches (related
objects during ``sync_from_stripe_data``) use stripe-python's module-level configuration,
which ``configure_module`` sets from the same settings, with an HTTP client that applies the
same limit and retry policy and counts them (as ``dj-stripe GET /v1/...``), so a caller sees
calls it did not make itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import multiprocessing
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from billing import fastjson, types

logger = logging.getLogger(__name__)

# Stripe object type -> the StripeClient v1 service that serves it.
# The retry policy (see retry_delay): attempts after the first come from
# settings.STRIPE_MAX_NETWORK_RETRIES unless a caller raises them (``throttle``).
RETRY_BASE_DELAY = 0.5
RETRY_MAX_DELAY = 8.0
RETRY_AFTER_MAX = 60.0


class StripeAPIError(Exception):
    """A Stripe call failed. ``message`` is meant for the person who triggered the call."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
        retryable: bool = False,
        kind: str = "api_error",
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.request_id = request_id
        self.retryable = retryable
        self.kind = kind


class StripeNotFound(StripeAPIError):
    """The object does not exist (or no longer exists) in Stripe."""


class StripeCardError(StripeAPIError):
    """The card was declined; the message is safe to show the customer."""


class StripeNotConfigured(StripeAPIError, ImproperlyConfigured):
    pass


_calls: Counter[str] = Counter()
_calls_lock = threading.Lock()
_thread_calls = threading.local()


def call_counts() -> dict[str, int]:
    """Requests made by this process, by operation (``customer.retrieve``; dj-stripe's own as
    ``dj-stripe GET /v1/...``), retries included, since start or reset."""
    with _calls_lock:
        return dict(_calls)


def calls_total() -> int:
    with _calls_lock:
        return sum(_calls.values())


def thread_calls() -> int:
    """Requests made by the calling thread, retries included (a mark to count from)."""
    return getattr(_thread_calls, "total", 0)


def _count(operation: str) -> None:
    with _calls_lock:
        _calls[operation] += 1
    _thread_calls.total = thread_calls() + 1


def call_counts_reset() -> None:
    with _calls_lock:
        _calls.clear()


def _api_key() -> str:
    key = settings.STRIPE_SECRET_KEY
    if not key:
        raise StripeNotConfigured(
            "STRIPE_SECRET_KEY is not set: the shop cannot reach Stripe. "
            "Set it in the environment (sk_test_... or sk_live_...).",
            kind="configuration",
        )
    if key.startswith("pk_"):
        raise StripeNotConfigured(
            "STRIPE_SECRET_KEY holds a publishable key (pk_...); a secret key is needed.",
            kind="configuration",
        )
    return key


# --- A person waiting on a page: a time budget for every Stripe call the request makes ------


@dataclass(frozen=True)
class _Budget:
    deadline: float  # time.monotonic() by which the page must have its answer
    call_timeout: float
    retries: int

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


_budget: ContextVar[_Budget | None] = ContextVar("stripe_budget", default=None)
# Below this, a call is not started: it could not finish in time anyway.
MIN_CALL_SECONDS = 0.5
# A network retry is worth it only with time left for the sleep and a short attempt after it.
HTTP_RETRY_MIN_SECONDS = 1.5


@contextmanager
def customer_facing(seconds: float | None = None) -> Iterator[None]:
    """Stripe calls made while a customer waits: each gets a short timeout and few retries, and
    together they stay within ``seconds`` (``STRIPE_CUSTOMER_BUDGET_SECONDS``), so a page
    answers in time during a Stripe outage instead of waiting out the worker's 30 s timeouts
    and retries. A call that cannot start in time fails as a retryable ``timeout``.

    Usable as a view decorator; covers dj-stripe's own fetches too (one HTTP client class).
    """
    budget = _Budget(
        deadline=time.monotonic() + (seconds or settings.STRIPE_CUSTOMER_BUDGET_SECONDS),
        call_timeout=settings.STRIPE_CUSTOMER_TIMEOUT_SECONDS,
        retries=settings.STRIPE_CUSTOMER_MAX_NETWORK_RETRIES,
    )
    token = _budget.set(budget)
    try:
        yield
    finally:
        _budget.reset(token)


def _out_of_time(operation: str) -> StripeAPIError:
    return StripeAPIError(
        f"Stripe did not answer within the page's time budget ({operation})",
        retryable=True,
        kind="timeout",
    )


@lru_cache(maxsize=4)
def _client_for(key: str, api_base: str | None, version: str, timeout: float):
    return stripe.StripeClient(
        key,
        stripe_version=version,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=0,  # _call retries, with one policy for every error
        http_client=_HttpClient(timeout=timeout, retrying=False),
    )


def client() -> stripe.StripeClient:
    """The StripeClient for the current settings (rebuilt when settings change, e.g. in tests)."""
    return _client_for(
        _api_key(),
        settings.STRIPE_API_BASE,
        settings.STRIPE_API_VERSION,
        settings.STRIPE_TIMEOUT_SECONDS,
    )


_OBJECT_ID = re.compile(r"/[a-z]+_[A-Za-z0-9_]+")


class _HttpClient(stripe.RequestsClient):
    """stripe-python's requests client. Each attempt's timeout is bounded by a waiting
    customer's time budget (``customer_facing``). With ``retrying`` (the module-level client,
    for dj-stripe's own requests) each request is also counted (attempts included, by method
    and path with ids elided), throttled, and retried by the same policy as ours; our own calls
    do that in ``_call``. stripe-python's own retries are off: it would not retry a 429."""

    def __init__(self, *, timeout: float, retrying: bool):
        super().__init__(timeout=timeout)
        self.retrying = retrying

    @property
    def _timeout(self) -> float:
        budget = _budget.get()
        if budget is None:
            return self._base_timeout
        return max(min(budget.call_timeout, budget.remaining()), 0.1)

    @_timeout.setter
    def _timeout(self, value: float) -> None:
        self._base_timeout = value

    def request(self, method, url, headers, post_data=None):
        if not self.retrying:
            return super().request(method, url, headers, post_data)
        operation = f"dj-stripe {method.upper()} {_OBJECT_ID.sub('/{id}', urlsplit(url).path)}"
        attempt = 0
        while True:
            _throttle_wait()
            _count(operation)
            try:
                answer = super().request(method, url, headers, post_data)
            except stripe.APIConnectionError as exc:
                delay = _next_delay(retry_delay(exc, attempt), attempt)
                if delay is None:
                    raise
                status = None
            else:
                status, answer_headers = answer[1], answer[2]
                delay = None
                if status >= 400:
                    delay = _next_delay(
                        _delay(status=status, headers=answer_headers, attempt=attempt), attempt
                    )
                if delay is None:
                    return answer
            attempt += 1
            _backoff(operation, status, attempt, delay)


def configure_module() -> None:
    """Point stripe-python's module-level configuration (used by dj-stripe) at our settings."""
    stripe.api_base = settings.STRIPE_API_BASE or stripe.DEFAULT_API_BASE
    stripe.api_version = settings.STRIPE_API_VERSION
    stripe.max_network_retries = 0  # _HttpClient retries, by the one policy
    stripe.default_http_client = _HttpClient(timeout=settings.STRIPE_TIMEOUT_SECONDS, retrying=True)


def _service_path(object_type: str) -> str:
    stripe_type = types.get(object_type)
    if stripe_type is None or not stripe_type.api:
        raise ValueError(f"No Stripe service for object type {object_type!r}")
    return stripe_type.api


def _service(object_type: str):
    service = client().v1
    for part in _service_path(object_type).split("."):
        service = getattr(service, part)
    return service


def _translate(exc: stripe.StripeError, operation: str) -> StripeAPIError:
    error = exc.error
    code = getattr(error, "code", None) or exc.code
    fields = {"code": code, "http_status": exc.http_status, "request_id": exc.request_id}
    detail = exc.user_message or str(exc)
    if isinstance(exc, stripe.CardError):
        return StripeCardError(detail, kind="card_error", **fields)
    if isinstance(exc, stripe.InvalidRequestError) and exc.http_status == 404:
        return StripeNotFound(
            f"Not found in Stripe ({operation}): {detail}", kind="not_found", **fields
        )
    if isinstance(exc, stripe.AuthenticationError):
        return StripeAPIError(
            "Stripe refused the API key (check STRIPE_SECRET_KEY).", kind="authentication", **fields
        )
    if isinstance(exc, stripe.RateLimitError):
        return StripeAPIError(
            "Stripe is rate limiting requests; try again in a few seconds.",
            retryable=True,
            kind="rate_limit",
            **fields,
        )
    if isinstance(exc, stripe.APIConnectionError):
        return StripeAPIError(
            f"Could not reach Stripe ({operation}): {detail}",
            retryable=True,
            kind="connection",
            **fields,
        )
    if isinstance(exc, stripe.IdempotencyError):
        return StripeAPIError(
            f"Stripe rejected a repeated request with different parameters: {detail}",
            kind="idempotency",
            **fields,
        )
    if isinstance(exc, stripe.InvalidRequestError):
        return StripeAPIError(
            f"Stripe rejected the request: {detail}", kind="invalid_request", **fields
        )
    retryable = exc.http_status is None or exc.http_status >= 500
    return StripeAPIError(
        f"Stripe had an error ({operation}): {detail}",
        retryable=retryable,
        kind="api_error",
        **fields,
    )


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def retry_delay(exc: stripe.StripeError, attempt: int) -> float | None:
    """Seconds to wait before retrying a request that failed with ``exc`` (None: do not)."""
    if isinstance(exc, stripe.APIConnectionError):
        return _delay(status=None, headers=exc.headers, attempt=attempt, reachable=exc.should_retry)
    return _delay(status=exc.http_status, headers=exc.headers, attempt=attempt)


def _delay(
    *, status: int | None, headers: Mapping[str, str] | None, attempt: int, reachable=True
) -> float | None:
    """The one retry policy, for our calls (``_call``) and dj-stripe's (its HTTP client).

    Retried: rate limits and lock timeouts (429), conflicts (409), Stripe's 5xx, and
    connection errors or timeouts stripe-python marks retryable (``reachable``). Stripe's
    ``Stripe-Should-Retry`` header, when present, decides. A ``Retry-After`` header is honoured
    (up to a minute); otherwise the wait doubles from RETRY_BASE_DELAY, with jitter, capped.
    Every POST carries an idempotency key (``_options``; stripe-python's for dj-stripe's, set
    before the first attempt), so retrying one is safe.
    """
    should = (_header(headers, "stripe-should-retry") or "").lower()
    if should == "false":
        return None
    if status is None:
        retryable = reachable
    else:
        retryable = should == "true" or status in (409, 429) or status >= 500
    if not retryable:
        return None
    retry_after = _header(headers, "retry-after")
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), RETRY_AFTER_MAX)
        except ValueError:
            pass  # an HTTP date: Stripe does not send those; fall back to backoff
    delay = min(RETRY_BASE_DELAY * 2**attempt, RETRY_MAX_DELAY)
    return delay * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security


# Stripe counts the requests that arrive within each second. Starts exactly 1/max_rps apart
# put the last of max_rps requests a hair inside the first one's second whenever the first
# reached Stripe a little later than it left (a 429, and a backoff); each second of the
# client's is therefore a little longer.
THROTTLE_MARGIN = 0.02


@dataclass
class _Throttle:
    """A client-side limit: request starts spaced at least ``interval`` apart, across threads
    and across the processes forked while it is in force (a backfill's writers): one limit."""

    interval: float
    retries: int

    def __post_init__(self) -> None:
        # When the next request may start (time.monotonic(), one clock for every process), in
        # memory shared with forked processes, with its own lock.
        self.next_at = multiprocessing.get_context("fork").Value("d", 0.0)

    def wait(self) -> None:
        with self.next_at.get_lock():
            now = time.monotonic()
            start = max(now, self.next_at.value)
            self.next_at.value = start + self.interval
        if start > now:
            time.sleep(start - now)

    def hold(self, seconds: float) -> None:
        """After a 429 nobody sends for ``seconds``: the limit is shared, so is the wait."""
        with self.next_at.get_lock():
            self.next_at.value = max(self.next_at.value, time.monotonic() + seconds)


_throttle: _Throttle | None = None


@contextmanager
def throttle(*, max_rps: float | None, retries: int | None = None):
    """Within the block, every Stripe request of this process and of the processes it forks
    meanwhile (dj-stripe's included) starts at most ``max_rps`` times a second, and
    ``retries`` replaces STRIPE_MAX_NETWORK_RETRIES (a long backfill outlasts a minute of 5xx
    rather than stopping)."""
    global _throttle
    previous = _throttle
    _throttle = _Throttle(
        interval=(1.0 + THROTTLE_MARGIN) / max_rps if max_rps else 0.0,
        retries=settings.STRIPE_MAX_NETWORK_RETRIES if retries is None else retries,
    )
    try:
        yield
    finally:
        _throttle = previous


def _throttle_wait() -> None:
    current = _throttle
    if current is not None and current.interval:
        current.wait()


def _retries() -> int:
    budget = _budget.get()
    if budget is not None:
        return budget.retries
    current = _throttle
    return current.retries if current else settings.STRIPE_MAX_NETWORK_RETRIES


def _next_delay(delay: float | None, attempt: int) -> float | None:
    """The wait before retry ``attempt + 1`` (None: give up): the policy's ``delay``, within
    the retries allowed and, for a waiting customer, shortened to fit the time budget or
    refused when no useful attempt would fit after it."""
    if delay is None or attempt >= _retries():
        return None
    budget = _budget.get()
    if budget is None:
        return delay
    delay = min(delay, max(budget.remaining() / 4, 0.0))
    return delay if budget.remaining() >= delay + HTTP_RETRY_MIN_SECONDS else None


def _check_budget(operation: str) -> None:
    budget = _budget.get()
    if budget is not None and budget.remaining() < MIN_CALL_SECONDS:
        raise _out_of_time(operation)


def _backoff(operation: str, status: int | None, attempt: int, delay: float) -> None:
    logger.warning(
        "stripe %s: %s; retry %s in %.2fs", operation, status or "no answer", attempt, delay
    )
    current = _throttle
    if current is not None and status == 429:
        current.hold(delay)
    time.sleep(delay)


def _call(operation: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one Stripe request under the limit and within a waiting customer's time budget,
    retrying as ``retry_delay`` says."""
    attempt = 0
    while True:
        _check_budget(operation)
        _throttle_wait()
        _count(operation)
        try:
            return fn(*args, **kwargs)
        except stripe.StripeError as exc:
            delay = _next_delay(retry_delay(exc, attempt), attempt)
            if delay is None:
                raise _translate(exc, operation) from exc
            attempt += 1
            _backoff(operation, exc.http_status, attempt, delay)


def _options(idempotency_key: str | None) -> dict[str, str]:
    """Request options of a POST: its idempotency key, made here when the caller has none, so
    every retry of this call is the same request to Stripe (stripe-python would make a new
    key for each attempt)."""
    return {"idempotency_key": idempotency_key or f"shop-auto-{uuid.uuid4().hex}"}


def as_dict(value: stripe.StripeObject | Mapping[str, Any]) -> dict[str, Any]:
    """A plain, JSON-safe dict of a Stripe object, as it came over the wire.

    stripe-python turns ``*_decimal`` fields into ``Decimal``; Stripe sends them as strings,
    and JSON columns (the mirror, snapshots) need them that way.
    """
    if isinstance(value, stripe.StripeObject):
        return value.to_dict(for_json=True)
    return json.loads(json.dumps(value, default=str))


def as_stripe_object(data: Mapping[str, Any]) -> stripe.StripeObject:
    """A plain dict back into stripe-python's objects (dj-stripe pages lists through them)."""
    return stripe.convert_to_stripe_object(
        dict(data), api_key=_api_key(), stripe_version=settings.STRIPE_API_VERSION
    )


def idempotency_key(*parts: object, namespace: str | None = None) -> str:
    """A stable key from the business identity of a create (e.g. the order and its attempt),
    within this installation's namespace (``STRIPE_IDEMPOTENCY_NAMESPACE``): Stripe keeps keys
    per account, and two deployments sharing one account both have an order 1 and a user 1."""
    if namespace is None:
        namespace = settings.STRIPE_IDEMPOTENCY_NAMESPACE
    raw = ":".join(str(p) for p in (namespace, *parts))
    return f"shop-{hashlib.sha256(raw.encode()).hexdigest()[:40]}"


# --- Generic operations, by Stripe object type -------------------------------------------


def retrieve(
    *, object_type: str, stripe_id: str, expand: Iterable[str] = ()
) -> stripe.StripeObject:
    params = {"expand": list(expand)} if expand else None
    return _call(f"{object_type}.retrieve", _service(object_type).retrieve, stripe_id, params)


def create(
    *,
    object_type: str,
    params: Mapping[str, Any],
    idempotency_key: str | None = None,
    refetch_replayed: bool = True,
) -> stripe.StripeObject:
    """Create an object. An answer replayed from Stripe's idempotency cache is the object as
    it was when first created (a session since paid still says ``open``), so the object is
    then retrieved: callers write what they get to the mirror and must get the present.
    ``refetch_replayed=False`` keeps the replayed answer (a webhook endpoint's secret is in
    its create answer only)."""
    created = _call(
        f"{object_type}.create",
        _service(object_type).create,
        dict(params),
        _options(idempotency_key),
    )
    if refetch_replayed and _replayed(created):
        return retrieve(object_type=object_type, stripe_id=created.id)
    return created


def _replayed(answer: stripe.StripeObject) -> bool:
    response = getattr(answer, "last_response", None)
    return bool(response) and response.headers.get("Idempotent-Replayed") == "true"


def update(
    *,
    object_type: str,
    stripe_id: str,
    params: Mapping[str, Any],
    idempotency_key: str | None = None,
) -> stripe.StripeObject:
    return _call(
        f"{object_type}.update",
        _service(object_type).update,
        stripe_id,
        dict(params),
        _options(idempotency_key),
    )


def delete(*, object_type: str, stripe_id: str) -> stripe.StripeObject:
    return _call(f"{object_type}.delete", _service(object_type).delete, stripe_id)


def account() -> stripe.StripeObject:
    """The account the key belongs to (its ``created`` bounds how far back objects go)."""
    return _call("account.retrieve", client().v1.accounts.retrieve_current)


def list_page(
    *,
    object_type: str,
    params: Mapping[str, Any] | None = None,
    starting_after: str | None = None,
) -> stripe.ListObject:
    """One page of a list, newest first: 100 objects after ``starting_after`` (the last id of
    the previous page). ``params`` may carry filters and ``expand`` (``data.<field>``)."""
    return as_stripe_object(
        list_page_data(object_type=object_type, params=params, starting_after=starting_after)
    )


def list_page_data(
    *,
    object_type: str,
    params: Mapping[str, Any] | None = None,
    starting_after: str | None = None,
) -> dict[str, Any]:
    """``list_page`` as the JSON Stripe sent (plain dicts): for a caller that reads a page's
    objects as data, stripe-python's objects cost more to build than the request."""
    page_params = {"limit": 100, **(params or {})}
    if starting_after:
        page_params["starting_after"] = starting_after
    path = "/v1/" + _service_path(object_type).replace(".", "/")
    return _call(f"{object_type}.list", _json_request, "get", path, page_params)


def _json_request(method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
    """``StripeClient.raw_request``, answering plain dicts: stripe-python parses every answer
    into OrderedDicts, which cost four times what orjson does and which callers copy again
    (``sync.objects_write`` writes plain dicts as they are). An error answer goes through
    stripe-python's own handling and raises as ``raw_request`` would.

    Built on stripe-python 15's requestor (dj-stripe pins stripe below 16), as
    ``raw_request`` itself is."""
    requestor = client()._requestor
    body, code, headers = requestor.request_raw(
        method, path, params=params, options={}, base_address="api", api_mode="V1",
        usage=["raw_request"],
    )  # fmt: skip
    if 200 <= code < 300:
        return fastjson.loads(body)
    return requestor._interpret_response(body, code, headers, "V1").data  # raises


def list_all(
    *, object_type: str, params: Mapping[str, Any] | None = None
) -> Iterator[stripe.StripeObject]:
    """Every object matching ``params``, newest first, fetched 100 to a page."""
    after = None
    while True:
        page = list_page(object_type=object_type, params=params, starting_after=after)
        yield from page.data
        if not page.has_more or not page.data:
            return
        after = page.data[-1].id


def action(
    *,
    object_type: str,
    name: str,
    stripe_id: str,
    params: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> stripe.StripeObject:
    """A named action on one object: ``checkout.session`` ``expire``, ``subscription`` ``cancel``."""
    method = getattr(_service(object_type), name)
    return _call(
        f"{object_type}.{name}", method, stripe_id, dict(params or {}), _options(idempotency_key)
    )


# --- Webhook signatures (verification is local, but it is stripe-python's code) -------------


class SignatureInvalid(Exception):
    """A webhook delivery's Stripe-Signature does not verify; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def signature_verify(*, payload: str, header: str, secrets: Iterable[str], tolerance: int) -> int:
    """Check ``header`` against each secret (current first, then rotated-out ones).

    Returns the signed timestamp. Raises ``SignatureInvalid`` when no secret verifies or the
    timestamp is outside ``tolerance`` seconds either way: in the past (a replay of an old
    delivery) or in the future (stripe-python checks only the past; a future timestamp would
    let a captured delivery be replayed until then). ``secrets`` may be lazy: the ones after
    the first verifying secret are never read.
    """
    if not header:
        raise SignatureInvalid("missing Stripe-Signature header")
    if _signature_timestamp(header) > time.time() + tolerance:
        raise SignatureInvalid("timestamp is in the future, beyond the tolerance zone")
    reason = "no signing secret configured for this endpoint"
    for secret in secrets:
        if not secret:
            continue
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=tolerance)
        except stripe.SignatureVerificationError as exc:
            reason = exc.user_message or "signature does not match"
            continue
        return _signature_timestamp(header)
    raise SignatureInvalid(reason)


def _signature_timestamp(header: str) -> int:
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            return int(value)
    raise SignatureInvalid("Stripe-Signature header has no timestamp")


def signature_header(*, payload: str, secret: str, timestamp: int) -> str:
    """Sign ``payload`` the way Stripe does (for tests, benchmarks and operators' replays)."""
    signed = f"{timestamp}.{payload}".encode()
    signature = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"
