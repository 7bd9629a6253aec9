"""What every request and response of the site gets, whatever view answers it.

- ``invalid_input_middleware``: a NUL character in the path or a query parameter is refused
  with 400 before any view runs (PostgreSQL refuses NUL in text: it would end as a 500);
- ``private_pages_middleware``: a page made for a signed-in person is never stored by a shared
  cache or the browser (``Cache-Control: private, no-store``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.cache import patch_cache_control

Middleware = Callable[[HttpRequest], HttpResponse]


def _has_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path:
        return True
    return any(
        "\x00" in key or any("\x00" in value for value in values)
        for key, values in request.GET.lists()
    )


def invalid_input_middleware(get_response: Middleware) -> Middleware:
    def middleware(request: HttpRequest) -> HttpResponse:
        if _has_nul(request):
            return HttpResponseBadRequest(
                "The address contains a character it may not (NUL).", content_type="text/plain"
            )
        return get_response(request)

    return middleware


def private_pages_middleware(get_response: Middleware) -> Middleware:
    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            patch_cache_control(response, private=True, no_store=True)
        return response

    return middleware
