"""The one retry policy and the client-side limit of billing.stripe_api, over HTTP."""

from __future__ import annotations

import time

import pytest
import stripe

from billing import stripe_api


def error(cls, status: int | None, headers: dict | None = None, **kwargs):
    return cls("x", http_status=status, headers=headers or {}, **kwargs)


@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (error(stripe.RateLimitError, 429), True),
        (error(stripe.APIError, 500), True),
        (error(stripe.APIError, 503), True),
        (error(stripe.InvalidRequestError, 409, param=None), True),
        (error(stripe.APIConnectionError, None, should_retry=True), True),
        (error(stripe.APIConnectionError, None, should_retry=False), False),
        (error(stripe.InvalidRequestError, 400, param=None), False),
        (error(stripe.InvalidRequestError, 404, param=None), False),
        (error(stripe.CardError, 402, param=None, code="card_declined"), False),
        # Stripe's own word wins both ways
        (error(stripe.APIError, 500, {"Stripe-Should-Retry": "false"}), False),
        (error(stripe.InvalidRequestError, 400, {"stripe-should-retry": "true"}, param=None), True),
    ],
)
def test_what_is_retried(exc, retried):
    assert (stripe_api.retry_delay(exc, 0) is not None) is retried


def test_backoff_doubles_with_jitter_and_is_capped():
    exc = error(stripe.APIError, 500)
    for attempt in range(8):
        base = min(
            stripe_api.policy.RETRY_BASE_DELAY * 2**attempt, stripe_api.policy.RETRY_MAX_DELAY
        )
        assert base / 2 <= stripe_api.retry_delay(exc, attempt) <= base


def test_retry_after_is_honoured_up_to_a_minute():
    assert stripe_api.retry_delay(error(stripe.RateLimitError, 429, {"Retry-After": "3"}), 0) == 3
    assert (
        stripe_api.retry_delay(error(stripe.RateLimitError, 429, {"retry-after": "900"}), 0) == 60
    )


def test_a_429_with_retry_after_waits_then_succeeds(stripe_emulator):
    stripe_emulator.set_faults(rate_limit=1, rate_limit_retry_after=1)
    stripe_api.list_page(object_type="customer")
    started = time.monotonic()

    stripe_api.list_page(object_type="customer")  # over the limit: 429, Retry-After: 1

    assert time.monotonic() - started >= 1.0
    assert stripe_emulator.stats()["by_status"] == {"200": 2, "429": 1}


def test_a_rate_limit_that_outlasts_the_retries_is_an_error_a_person_can_read(
    stripe_emulator, settings
):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    stripe_emulator.set_faults(rate_limit=1)
    stripe_api.list_page(object_type="customer")
    with pytest.raises(stripe_api.StripeAPIError) as info:
        stripe_api.list_page(object_type="customer")
    assert info.value.kind == "rate_limit" and info.value.retryable


def test_throttle_spaces_requests(stripe_emulator):
    started = time.monotonic()
    with stripe_api.throttle(max_rps=10):
        for _ in range(6):
            stripe_api.list_page(object_type="customer")
    assert time.monotonic() - started >= 0.5
    assert stripe_emulator.stats()["total"] == 6


def test_dj_stripe_requests_are_counted(stripe_emulator, db):
    from djstripe.models import Customer

    created = stripe_api.create(object_type="customer", params={"email": "c@example.com"})
    before = stripe_api.call_counts()

    Customer._get_or_retrieve(id=created.id)  # dj-stripe fetching a row it lacks

    after = stripe_api.call_counts()
    assert after.get("dj-stripe GET /v1/customers/{id}", 0) == (
        before.get("dj-stripe GET /v1/customers/{id}", 0) + 1
    )


def test_dj_stripe_requests_follow_the_same_retry_policy(stripe_emulator, db):
    from djstripe.models import Customer

    created = stripe_api.create(object_type="customer", params={"email": "r@example.com"})
    stripe_emulator.set_faults(rate_limit=1, rate_limit_retry_after=1)
    stripe_api.list_page(object_type="customer")  # the second's slot is taken

    Customer._get_or_retrieve(id=created.id)  # dj-stripe's fetch: 429, then after 1 s, 200

    assert Customer.objects.filter(id=created.id).exists()
    assert stripe_emulator.stats()["by_status"]["429"] >= 1


def test_the_requestor_json_request_relies_on_is_there(stripe_emulator):
    """``sdk.json_request`` is the one use of stripe-python's private API (its requestor, as
    ``StripeClient.raw_request`` uses it): this fails when an upgrade moves it."""
    import inspect

    requestor = stripe_api.client()._requestor
    raw = inspect.signature(requestor.request_raw).parameters
    for name in ("method", "url", "params", "options", "base_address", "api_mode", "usage"):
        assert name in raw, (name, list(raw))
    interpret = list(inspect.signature(requestor._interpret_response).parameters)
    assert interpret[:4] == ["rbody", "rcode", "rheaders", "api_mode"], interpret
    # and an error answer still raises stripe-python's error, which the policy translates
    with pytest.raises(stripe_api.StripeAPIError, match="No such customer"):
        stripe_api.list_page_data(object_type="customer", params={"starting_after": "cus_nope"})
