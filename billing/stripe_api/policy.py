"""How every Stripe request is made: counted, limited (``throttle``), within a waiting
customer's time budget (``customer_facing``), and retried by one policy (``retry_delay``).
``call`` applies it to our requests; ``sdk.HttpClient`` to dj-stripe's own."""

from __future__ import annotations

import logging
import multiprocessing
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import stripe
from django.conf import settings

from billing.stripe_api.errors import StripeAPIError, translate

logger = logging.getLogger("billing.stripe_api")

# The retry policy (see retry_delay): attempts after the first come from
# settings.STRIPE_MAX_NETWORK_RETRIES unless a caller raises them (``throttle``).
RETRY_BASE_DELAY = 0.5
RETRY_MAX_DELAY = 8.0
RETRY_AFTER_MAX = 60.0


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


def count(operation: str) -> None:
    with _calls_lock:
        _calls[operation] += 1
    _thread_calls.total = thread_calls() + 1


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


def call_timeout(default: float) -> float:
    """One attempt's timeout: ``default``, or within a waiting customer's time budget."""
    budget = _budget.get()
    if budget is None:
        return default
    return max(min(budget.call_timeout, budget.remaining()), 0.1)


def _out_of_time(operation: str) -> StripeAPIError:
    return StripeAPIError(
        f"Stripe did not answer within the page's time budget ({operation})",
        retryable=True,
        kind="timeout",
    )


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def retry_delay(exc: stripe.StripeError, attempt: int) -> float | None:
    """Seconds to wait before retrying a request that failed with ``exc`` (None: do not)."""
    if isinstance(exc, stripe.APIConnectionError):
        return delay_for(
            status=None, headers=exc.headers, attempt=attempt, reachable=exc.should_retry
        )
    return delay_for(status=exc.http_status, headers=exc.headers, attempt=attempt)


def delay_for(
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


def throttle_wait() -> None:
    current = _throttle
    if current is not None and current.interval:
        current.wait()


def _retries() -> int:
    budget = _budget.get()
    if budget is not None:
        return budget.retries
    current = _throttle
    return current.retries if current else settings.STRIPE_MAX_NETWORK_RETRIES


def next_delay(delay: float | None, attempt: int) -> float | None:
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


def backoff(operation: str, status: int | None, attempt: int, delay: float) -> None:
    logger.warning(
        "stripe %s: %s; retry %s in %.2fs", operation, status or "no answer", attempt, delay
    )
    current = _throttle
    if current is not None and status == 429:
        current.hold(delay)
    time.sleep(delay)


def call(operation: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one Stripe request under the limit and within a waiting customer's time budget,
    retrying as ``retry_delay`` says."""
    attempt = 0
    while True:
        _check_budget(operation)
        throttle_wait()
        count(operation)
        try:
            return fn(*args, **kwargs)
        except stripe.StripeError as exc:
            delay = next_delay(retry_delay(exc, attempt), attempt)
            if delay is None:
                raise translate(exc, operation) from exc
            attempt += 1
            backoff(operation, exc.http_status, attempt, delay)
