"""The Content-Security-Policy header, with Stripe Checkout's origin allowed as a form target.

Buying posts a form here that answers with a redirect to Stripe Checkout; browsers apply
``form-action`` to the redirect as well, so Checkout's origin must be listed. It is Stripe's
own, or the emulator's when ``STRIPE_API_BASE`` points the product at one (read per request:
tests change that setting at run time).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings

STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"


def checkout_origin() -> str:
    if settings.STRIPE_API_BASE:
        parts = urlsplit(settings.STRIPE_API_BASE)
        return f"{parts.scheme}://{parts.netloc}"
    return STRIPE_CHECKOUT_ORIGIN


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only:
            update = dict(parts.update or {})
            update["form-action"] = [*update.get("form-action", ()), checkout_origin()]
            parts.update = update
        return parts
