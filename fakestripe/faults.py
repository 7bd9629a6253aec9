"""Injected faults and request counters, settable at run time through /_fake/faults.

API faults (rate_limit, error_rate, error_every, latency) apply to /v1 and /v2 requests;
delivery faults (duplicate_deliveries, shuffle_window, delivery_delay, endpoint_fail_first)
to webhooks.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from typing import Any

from .errors import StripeError, invalid

DEFAULTS: dict[str, Any] = {
    "rate_limit": None,  # API requests per second, beyond which a 429 answers
    # Seconds to put in a Retry-After header on those 429s. Stripe documents none (0: none
    # sent, as Stripe); set it to test a client that honours the header where one is sent.
    "rate_limit_retry_after": 0,
    "error_rate": 0.0,  # probability of a 500 api_error
    "error_every": 0,  # every Nth API request answers a 500 api_error (0: none)
    "latency": 0.0,  # seconds added to every API request
    "duplicate_deliveries": 1,  # each delivery attempt is sent this many times
    "shuffle_window": 0,  # deliveries are shuffled within windows of this many events
    "delivery_delay": 0.0,  # seconds before each delivery attempt
    # The first N attempts per (event, endpoint) are sent for real and then counted as
    # failed whatever the receiver answered: the receiver sees the event, Stripe retries,
    # as when a 2xx arrives after Stripe's timeout. An int applies to every endpoint, a
    # {"we_...": N} mapping to the endpoints named.
    "endpoint_fail_first": 0,
}


def _number(name: str, value: Any, *, integer: bool = False, minimum: float = 0) -> Any:
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError) as exc:
        raise invalid(f"Invalid value for {name}: {value!r}", param=name) from exc
    if number < minimum:
        raise invalid(f"{name} must be at least {minimum}", param=name)
    return number


def rate_limited(retry_after: int = 0) -> StripeError:
    """Stripe's answer past the rate limit.

    Status 429, type invalid_request_error, code rate_limit, and a Stripe-Rate-Limited-Reason
    header naming the limiter. No Stripe-Should-Retry header (Stripe sends `true` only on
    429 lock timeouts, code lock_timeout), so stripe-python does not retry it; and no
    Retry-After, which Stripe does not document (sent only when the fault asks for it).
    """
    headers = {"Stripe-Rate-Limited-Reason": "global-rate"}
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    return StripeError(
        429,
        "invalid_request_error",
        "Request rate limit exceeded. Learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        code="rate_limit",
        headers=headers,
    )


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.settings: dict[str, Any] = dict(DEFAULTS)
        self._window: deque[float] = deque()
        self._requests = 0  # API requests since error_every was set

    def update(self, values: dict[str, Any]) -> dict[str, Any]:
        clean: dict[str, Any] = {}
        for name, value in values.items():
            if name not in DEFAULTS:
                raise invalid(f"Unknown fault: {name}", param=name)
            if value is None:
                clean[name] = DEFAULTS[name]
            elif name == "rate_limit":
                clean[name] = _number(name, value, integer=True, minimum=1)
            elif name == "rate_limit_retry_after":
                clean[name] = _number(name, value, integer=True)
            elif name == "error_rate":
                clean[name] = min(_number(name, value), 1.0)
            elif name in ("latency", "delivery_delay"):
                clean[name] = _number(name, value)
            elif name == "duplicate_deliveries":
                clean[name] = _number(name, value, integer=True, minimum=1)
            elif name == "shuffle_window":
                clean[name] = _number(name, value, integer=True)
            elif isinstance(value, dict):
                clean[name] = {k: _number(name, v, integer=True) for k, v in value.items()}
            else:
                clean[name] = _number(name, value, integer=True)
        with self._lock:
            self.settings.update(clean)
            if "error_every" in clean:
                self._requests = 0
            return dict(self.settings)

    def clear(self) -> None:
        with self._lock:
            self.settings = dict(DEFAULTS)
            self._window.clear()
            self._requests = 0

    def get(self, name: str) -> Any:
        return self.settings[name]

    def fail_first(self, endpoint_id: str) -> int:
        value = self.settings["endpoint_fail_first"]
        return value.get(endpoint_id, 0) if isinstance(value, dict) else value

    def before_api_request(self) -> None:
        """Apply latency, rate limiting and random errors; raise what Stripe would answer."""
        latency = self.settings["latency"]
        if latency:
            time.sleep(latency)
        limit = self.settings["rate_limit"]
        if limit:
            now = time.monotonic()
            with self._lock:
                while self._window and now - self._window[0] >= 1.0:
                    self._window.popleft()
                limited = len(self._window) >= limit
                if not limited:
                    self._window.append(now)
            if limited:
                raise rate_limited(self.settings["rate_limit_retry_after"])
        failed, every = False, self.settings["error_every"]
        if every:
            with self._lock:
                self._requests += 1
                failed = self._requests % every == 0
        rate = self.settings["error_rate"]
        if failed or (rate and random.random() < rate):
            raise StripeError(
                500,
                "api_error",
                "An unknown error occurred while processing your request (injected by "
                "fakestripe's error_rate fault).",
            )


class Stats:
    """API request counters by method + path template, by Stripe-Version, and in total."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.by_route: Counter[str] = Counter()
            self.by_version: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()
            self.total = 0

    def record(self, route: str, version: str, status: int) -> None:
        with self._lock:
            self.by_route[route] += 1
            self.by_version[version] += 1
            self.by_status[str(status)] += 1
            self.total += 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self.total,
                "by_route": dict(self.by_route),
                "by_version": dict(self.by_version),
                "by_status": dict(self.by_status),
            }
