"""Rate limits on the forms people guess at: login (customer and admin), sign-up, password reset.

django-ratelimit keeps the counters in the default cache (Redis in production, shared by every
web process). Each POST counts against two limits from ``settings.RATE_LIMITS``: the client's
IP address and the account named in the form (username or email, normalised, whether or not
such an account exists, so the limit reveals nothing). Over either limit, the form is not
processed at all (no password hashing, no mail) and the answer is a 429 page saying when to
try again.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_ratelimit.core import get_usage

logger = logging.getLogger(__name__)


def client_ip(request: HttpRequest) -> str:
    """The client's address: behind the TLS proxy, the last one it appended to X-Forwarded-For.

    Earlier entries are whatever the client sent and cannot be trusted.
    """
    if settings.BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.META["REMOTE_ADDR"]


def _account_key(field: str) -> Callable[[str, HttpRequest], str]:
    def key(group: str, request: HttpRequest) -> str:
        return request.POST.get(field, "").strip().lower()

    return key


def limits_exceeded(request: HttpRequest, group: str) -> int | None:
    """Count this POST against ``group``'s limits; seconds to wait when over one, else None."""
    config = settings.RATE_LIMITS[group]
    keys: list[tuple[str, Callable | str]] = [("ip", "ip")]
    if request.POST.get(config["account_field"], "").strip():
        keys.append(("account", _account_key(config["account_field"])))
    wait = None
    for kind, key in keys:
        usage = get_usage(
            request, group=f"{group}:{kind}", key=key, rate=config[kind], increment=True
        )
        if usage and usage["should_limit"]:
            wait = max(wait or 0, usage["time_left"], 1)
    return wait


def throttled(group: str) -> Callable:
    """Decorate a view so its POSTs are rate limited under ``settings.RATE_LIMITS[group]``."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method == "POST":
                wait = limits_exceeded(request, group)
                if wait is not None:
                    logger.warning("rate limit: %s refused from %s", group, client_ip(request))
                    response = render(
                        request,
                        "throttled.html",
                        {"minutes": max(1, math.ceil(wait / 60)), "group": group},
                        status=429,
                    )
                    response["Retry-After"] = str(wait)
                    return response
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
