"""Webhook intake: verify, store, acknowledge. No Stripe call and no business work here."""

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.webhooks import intake, refusals
from billing.webhooks.endpoints import WEBHOOK_PATH

logger = logging.getLogger(__name__)


def _remote_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _read_body(request: HttpRequest) -> bytes:
    """The raw body, refusing to read past the limit when the length is announced."""
    announced = request.META.get("CONTENT_LENGTH") or "0"
    if announced.isdigit() and int(announced) > intake.MAX_WEBHOOK_BODY:
        raise intake.DeliveryRejected(
            413, f"body of {announced} bytes is over the limit", "too_large"
        )
    return request.read(intake.MAX_WEBHOOK_BODY + 1)


@csrf_exempt  # Stripe cannot send a CSRF token; the signature authenticates the request.
@require_POST
def webhook(request: HttpRequest, endpoint_uuid):
    body = b""
    try:
        body = _read_body(request)
        accepted = intake.delivery_accept(
            endpoint_uuid=endpoint_uuid,
            body=body,
            signature=request.headers.get("Stripe-Signature", ""),
            remote_ip=_remote_ip(request),
        )
    except intake.DeliveryRejected as exc:
        refusals.delivery_reject(
            endpoint_uuid=endpoint_uuid,
            status=exc.status,
            code=exc.code,
            reason=exc.reason,
            body_size=len(body),
            remote_ip=_remote_ip(request),
        )
        return JsonResponse({"error": exc.reason}, status=exc.status)
    return JsonResponse({"received": True, "duplicate": not accepted.created})


def webhook_middleware(get_response: Callable[[HttpRequest], HttpResponse]):
    """Serve webhook deliveries past the middleware that follows this one.

    Placed right after ``SecurityMiddleware`` (HTTPS redirect, security headers). A delivery
    needs nothing further down: no session, user, messages, time zone or CSRF check (the view
    is exempt: the signature authenticates it), and no CSP or frame header on a JSON answer.
    Intake is the busiest URL and the one Stripe times; this keeps it to the view's own work.
    A path under the prefix that is not a webhook URL goes the usual way (a 404, or a slash
    appended).
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(WEBHOOK_PATH):
            try:
                match = resolve(request.path_info)
            except Resolver404:
                return get_response(request)
            if match.func is webhook:
                request.resolver_match = match
                return webhook(request, *match.args, **match.kwargs)
        return get_response(request)

    return middleware
