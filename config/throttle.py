"""Rate limits on the forms that send mail: sign-up and password reset; the one 429 page.

django-ratelimit keeps the counters in the default cache (Redis in production, shared by every
web process). Each POST counts against two limits from ``settings.RATE_LIMITS``: the client's
IP address and the account named in the form, keyed as the login resolves names
(``orders.auth.account_key``: any spelling of an account's username or email is the account;
an unknown name counts caselessly, whether or not such an account exists, so the limit reveals
nothing). Over either limit, the form is not processed at all (no mail) and the answer is a 429
page saying when to try again.

Logins and two-factor codes count failures only, with a lockout a stranger cannot use against
the owner: ``orders.login.limits``.
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

from orders.auth import account_key

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


def limits_exceeded(request: HttpRequest, group: str) -> int | None:
    """Count this POST against ``group``'s limits; seconds to wait when over one, else None."""
    config = settings.RATE_LIMITS[group]
    named = request.POST.get(config["account_field"], "")
    keys: list[tuple[str, Callable | str]] = [("ip", "ip")]
    if named.strip():
        account = account_key(named)
        keys.append(("account", lambda group, request: account))
    wait = None
    for kind, key in keys:
        usage = get_usage(
            request, group=f"{group}:{kind}", key=key, rate=config[kind], increment=True
        )
        if usage and usage["should_limit"]:
            wait = max(wait or 0, usage["time_left"], 1)
    return wait


def refused(request: HttpRequest, group: str, wait: int, **context) -> HttpResponse:
    """The 429 page: what was limited and how many minutes to wait, with ``Retry-After``."""
    logger.warning("rate limit: %s refused from %s", group, client_ip(request))
    response = render(
        request,
        "throttled.html",
        {"minutes": max(1, math.ceil(wait / 60)), "group": group, **context},
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response


def throttled(group: str) -> Callable:
    """Decorate a view so its POSTs are rate limited under ``settings.RATE_LIMITS[group]``."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method == "POST":
                wait = limits_exceeded(request, group)
                if wait is not None:
                    return refused(request, group, wait)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
