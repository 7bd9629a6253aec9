"""Staff two-factor pages: the code after the password, first-time enrolment with its backup
codes, and an administrator's reset of another staff member's two-factor.

The first three are for a staff member signed in with the password whose session is not yet
verified: the admin sends them here (``config.admin.ShopAdminSite``), and they are not admin
views (``admin_view`` would send them back). Codes are limited like passwords
(``orders.login.limits``, group "two_factor").
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

import django_otp
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods
from django_otp.plugins.otp_static.models import StaticDevice

from config import throttle
from orders.forms import TwoFactorCodeForm
from orders.login import devices, limits, two_factor
from orders.login.views import safe_next

BACKUP_CODES_SESSION_KEY = "two_factor_backup_codes"
WRONG_CODE = (
    "That code is not right. Check the time on your phone, wait for a new code and try again."
)


def _staff_signed_in(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Active staff signed in with their password; anyone else goes to the admin's login."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        user = request.user
        if not (user.is_authenticated and user.is_active and user.is_staff):
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        return view(request, *args, **kwargs)

    return never_cache(wrapped)


def _next(request: HttpRequest) -> str:
    return safe_next(request, reverse("admin:index"))


def _with_next(name: str, request: HttpRequest) -> str:
    return f"{reverse(name)}?{urlencode({'next': _next(request)})}"


def _page(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    context = {**admin.site.each_context(request), "next": _next(request), **context}
    return TemplateResponse(request, f"admin/two_factor/{template}", context, status=status)


def _code_checked(request: HttpRequest, form: TwoFactorCodeForm, check: Callable[[str], object]):
    """Run ``check`` on the posted code within the code limits: (its result, a refusal)."""
    attempt = limits.attempt_for(request, group="two_factor", user=request.user)
    wait = limits.wait(attempt)
    if wait is not None:
        return None, throttle.refused(request, "two_factor", wait)
    result = check(form.cleaned_data["code"])
    if result is None:
        limits.failure_record(attempt)
        form.add_error("code", WRONG_CODE)
    return result, None


def _verified(request: HttpRequest, device, response: HttpResponse) -> HttpResponse:
    """The session is verified (a new session key: it just gained rights); the browser is now
    a trusted device of the account."""
    request.session.cycle_key()
    django_otp.login(request, device)
    devices.device_trust(request, response, user=request.user)
    return response


@_staff_signed_in
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """Ask a staff member with an authenticator for a code (or a backup code)."""
    if not two_factor.pending(request):
        return redirect(_next(request))
    if not two_factor.enrolled(request.user):
        return redirect(_with_next("two_factor_setup", request))
    form = TwoFactorCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = request.user
        device, refused = _code_checked(
            request, form, lambda code: two_factor.code_verify(user=user, code=code)
        )
        if refused:
            return refused
        if device is not None:
            if isinstance(device, StaticDevice):
                left = two_factor.backup_codes_left(user=user)
                messages.warning(request, f"Backup code used: {left} left.")
            return _verified(request, device, HttpResponseRedirect(_next(request)))
    return _page(request, "verify.html", {"form": form, "title": "Two-factor authentication"})


@_staff_signed_in
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator: scan the QR code (or type the key), confirm with a code."""
    if not two_factor.pending(request):
        return redirect(_next(request))
    if two_factor.enrolled(request.user):
        return redirect(_with_next("two_factor_verify", request))
    device = two_factor.enrolment_device(user=request.user)
    form = TwoFactorCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes, refused = _code_checked(
            request, form, lambda code: two_factor.enrolment_confirm(device=device, code=code)
        )
        if refused:
            return refused
        if codes is not None:
            request.session[BACKUP_CODES_SESSION_KEY] = codes
            response = HttpResponseRedirect(_with_next("two_factor_backup_codes", request))
            return _verified(request, device, response)
    context = {
        "form": form,
        "title": "Set up two-factor authentication",
        "qr_code": two_factor.qr_data_uri(device),
        "secret": two_factor.secret_text(device),
    }
    return _page(request, "setup.html", context)


@_staff_signed_in
@require_GET
def backup_codes(request: HttpRequest) -> HttpResponse:
    """The backup codes just made, shown this once (they leave the session as they are shown)."""
    codes = request.session.pop(BACKUP_CODES_SESSION_KEY, None)
    return _page(request, "backup_codes.html", {"codes": codes, "title": "Your backup codes"})


@require_http_methods(["GET", "POST"])
def reset(request: HttpRequest, object_id: str) -> HttpResponse:
    """An administrator resets a staff member's two-factor (an admin view: GET asks, POST does)."""
    if not request.user.has_perm(two_factor.RESET_PERMISSION):
        raise PermissionDenied
    user_model = get_user_model()
    target = get_object_or_404(user_model, pk=object_id)
    opts = user_model._meta
    back = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[target.pk])
    if request.method == "POST":
        try:
            removed = two_factor.two_factor_reset(actor=request.user, user=target)
        except ValueError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"Two-factor reset for {target.get_username()} ({removed} device(s) removed): "
                "they set up a new authenticator at their next sign-in.",
            )
        return HttpResponseRedirect(back)
    context = {
        "title": f"Reset two-factor for {target.get_username()}",
        "target": target,
        "enrolled": two_factor.enrolled(target),
        "own": target.pk == request.user.pk,
        "back": back,
    }
    return _page(request, "reset.html", context)
