"""The sign-in pages' guard (the shop's login and the admin's) and the one-time link's page."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth import authenticate, login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from config import throttle
from orders.login import devices, limits, links, two_factor


def safe_next(request: HttpRequest, default: str) -> str:
    """The ``next`` the form or the URL names, when it stays on this site; else ``default``."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and allowed else default


def login_guarded(view: Callable[..., HttpResponse], *, home: str) -> Callable[..., HttpResponse]:
    """Put ``orders.login.limits`` in front of a login view whose form posts ``username`` and
    ``password``. ``home`` is where a mailed link leads when the form names no ``next``.

    Under the limits the view runs as usual; a failed ``authenticate()`` is counted by the
    limits' signal receiver, and a complete sign-in makes this browser a trusted device of the
    account (for staff who need a second factor, that waits for the code). Over a limit, the
    view does not run: the password is checked once (unless the address has failed far too
    often), a link is mailed if it was right, and the answer is the 429 page, the same
    whichever it was.
    """

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        name = request.POST.get("username", "")
        attempt = limits.attempt_for(request, group="login", name=name)
        wait = limits.wait(attempt)
        if wait is not None:
            user = None
            if not limits.unchecked(attempt):
                password = request.POST.get("password", "")
                user = authenticate(request, username=name, password=password)
            links.link_send_later(user=user, next_url=safe_next(request, home))
            return throttle.refused(request, "login", wait, link_mailed=True)
        before = request.user.pk
        response = view(request, *args, **kwargs)
        user = request.user
        if user.is_authenticated and user.pk != before and not two_factor.required(user):
            devices.device_trust(request, response, user=user)
        return response

    return guarded


def _see_other(url: str) -> HttpResponseRedirect:
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def login_link(request: HttpRequest, token: str) -> HttpResponse:
    """The mailed link. GET asks (a mail scanner's visit must not spend it); POST signs in."""
    try:
        if request.method == "GET":
            user, next_url = links.link_read(token=token)
            return render(request, "registration/login_link.html", {"account": user})
        user, next_url = links.link_use(token=token)
    except links.LinkInvalid as exc:
        return render(request, "registration/login_link.html", {"problem": str(exc)}, status=400)
    login(request, user, backend="orders.auth.AccountBackend")
    response = _see_other(next_url)
    if not two_factor.required(user):
        devices.device_trust(request, response, user=user)
    return response
