"""Stripe's errors as the product's own: ``StripeAPIError`` with a message a person can act
on, its kind, and whether retrying may help."""

from __future__ import annotations

import stripe
from django.core.exceptions import ImproperlyConfigured


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


def translate(exc: stripe.StripeError, operation: str) -> StripeAPIError:
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
