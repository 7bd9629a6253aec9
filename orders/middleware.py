"""Activate the customer's time zone for the request (see ``orders.timezones``)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from orders import selectors, timezones


def time_zone_middleware(get_response: Callable[[HttpRequest], HttpResponse]):
    def middleware(request: HttpRequest) -> HttpResponse:
        saved = ""
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            if timezones.SESSION_KEY not in request.session:
                # Once per session: "" when the customer has not chosen one.
                request.session[timezones.SESSION_KEY] = selectors.customer_saved_time_zone(
                    user=user
                )
            saved = request.session[timezones.SESSION_KEY]
        chosen = timezones.zone(saved) or timezones.zone(request.COOKIES.get(timezones.COOKIE))
        if chosen is None:
            timezone.deactivate()  # the site's TIME_ZONE
        else:
            timezone.activate(chosen)
        try:
            return get_response(request)
        finally:
            timezone.deactivate()

    return middleware
