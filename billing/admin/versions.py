"""Admin page: Stripe API versions (pinned, SDK, dj-stripe), endpoints, and events' versions.

Gated by ``djstripe.view_webhookendpoint``: staff without it get 403. Endpoints are read from
Stripe (one list call, kept ``CONSOLE_ENDPOINTS_CACHE_SECONDS``; "Refresh from Stripe" reads
it again); when Stripe cannot be reached, the page falls back to the mirror and says so.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from billing import stripe_api
from billing.console import limits
from billing.webhooks import endpoints, versions

PERMISSION = "djstripe.view_webhookendpoint"


def _api_versions(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    pinned = settings.STRIPE_API_VERSION
    stripe_error = None
    # Stripe's list, read at most every few minutes unless someone asks for it fresh (counted
    # against their console limit).
    max_age = settings.CONSOLE_ENDPOINTS_CACHE_SECONDS
    if "refresh" in request.GET:
        if wait := limits.stripe_calls_wait(request.user):
            messages.error(request, limits.wait_text(wait))
        else:
            max_age = 0
    try:
        listed = endpoints.endpoints_list(max_age=max_age)
    except stripe_api.StripeAPIError as exc:
        stripe_error = exc.message
        listed = endpoints.endpoints_list(from_stripe=False)
    libraries = [
        ("stripe-python (SDK)", versions.sdk_api_version()),
        ("dj-stripe", versions.djstripe_api_version()),
    ]
    context = {
        **admin.site.each_context(request),
        "title": "Stripe API versions",
        "pinned": pinned,
        "libraries": [
            {
                "name": name,
                "version": version,
                "same": version == pinned,
                "compatible": versions.api_versions_compatible(version, pinned),
            }
            for name, version in libraries
        ],
        "endpoints": listed,
        "endpoints_max_age": settings.CONSOLE_ENDPOINTS_CACHE_SECONDS,
        "stripe_error": stripe_error,
        "versions_seen": versions.api_versions_seen(),
    }
    return TemplateResponse(request, "admin/billing/api_versions.html", context)


api_versions_view = admin.site.admin_view(_api_versions)
