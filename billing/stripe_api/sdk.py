"""The StripeClient for the current settings, at the pinned API version, and stripe-python's
module-level configuration that dj-stripe's own requests use (the same policy applies)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import stripe
from django.conf import settings

from billing import fastjson, types
from billing.stripe_api import policy
from billing.stripe_api.errors import StripeNotConfigured


def api_key() -> str:
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


@lru_cache(maxsize=4)
def _client_for(key: str, api_base: str | None, version: str, timeout: float):
    return stripe.StripeClient(
        key,
        stripe_version=version,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=0,  # policy.call retries, one policy for every error
        http_client=HttpClient(timeout=timeout, retrying=False),
    )


def client() -> stripe.StripeClient:
    """The StripeClient for the current settings (rebuilt when settings change, e.g. in tests)."""
    return _client_for(
        api_key(),
        settings.STRIPE_API_BASE,
        settings.STRIPE_API_VERSION,
        settings.STRIPE_TIMEOUT_SECONDS,
    )


_OBJECT_ID = re.compile(r"/[a-z]+_[A-Za-z0-9_]+")


class HttpClient(stripe.RequestsClient):
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
        return policy.call_timeout(self._base_timeout)

    @_timeout.setter
    def _timeout(self, value: float) -> None:
        self._base_timeout = value

    def request(self, method, url, headers, post_data=None):
        if not self.retrying:
            return super().request(method, url, headers, post_data)
        operation = f"dj-stripe {method.upper()} {_OBJECT_ID.sub('/{id}', urlsplit(url).path)}"
        attempt = 0
        while True:
            policy.throttle_wait()
            policy.count(operation)
            try:
                answer = super().request(method, url, headers, post_data)
            except stripe.APIConnectionError as exc:
                delay = policy.next_delay(policy.retry_delay(exc, attempt), attempt)
                if delay is None:
                    raise
                status = None
            else:
                status, answer_headers = answer[1], answer[2]
                delay = None
                if status >= 400:
                    delay = policy.next_delay(
                        policy.delay_for(status=status, headers=answer_headers, attempt=attempt),
                        attempt,
                    )
                if delay is None:
                    return answer
            attempt += 1
            policy.backoff(operation, status, attempt, delay)


def configure_module() -> None:
    """Point stripe-python's module-level configuration (used by dj-stripe) at our settings."""
    stripe.api_base = settings.STRIPE_API_BASE or stripe.DEFAULT_API_BASE
    stripe.api_version = settings.STRIPE_API_VERSION
    stripe.max_network_retries = 0  # HttpClient retries, by the one policy
    stripe.default_http_client = HttpClient(timeout=settings.STRIPE_TIMEOUT_SECONDS, retrying=True)


def service_path(object_type: str) -> str:
    stripe_type = types.get(object_type)
    if stripe_type is None or not stripe_type.api:
        raise ValueError(f"No Stripe service for object type {object_type!r}")
    return stripe_type.api


def service(object_type: str):
    service = client().v1
    for part in service_path(object_type).split("."):
        service = getattr(service, part)
    return service


def json_request(
    method: str, path: str, params: dict[str, Any], *, api_mode: str = "V1"
) -> dict[str, Any]:
    """``StripeClient.raw_request``, answering plain dicts: stripe-python parses every answer
    into OrderedDicts, which cost four times what orjson does and which callers copy again
    (``sync.objects_write`` writes plain dicts as they are). An error answer goes through
    stripe-python's own handling and raises as ``raw_request`` would.

    Built on stripe-python 15's requestor (dj-stripe pins stripe below 16), as
    ``raw_request`` itself is: the one use of stripe-python's private API, checked by
    ``tests/billing/test_stripe_api.py::test_the_requestor_json_request_relies_on_is_there``.
    ``api_mode="V2"`` for ``/v2`` paths (v2 lists, followed by their ``next_page_url``)."""
    requestor = client()._requestor
    body, code, headers = requestor.request_raw(
        method,
        path,
        params=params,
        options={},
        base_address="api",
        api_mode=api_mode,
        usage=["raw_request"],
    )
    if 200 <= code < 300:
        return fastjson.loads(body)
    return requestor._interpret_response(body, code, headers, api_mode).data  # raises
