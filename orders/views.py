"""Customer pages. Thin: parse the request, call one service or selector, render.

Views that call Stripe run under ``stripe_api.customer_facing()``: short timeouts and few
retries, so they answer within seconds during a Stripe outage. What went wrong is logged with
Stripe's detail; the customer reads ``orders.wording.trouble``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing import stripe_api
from config.throttle import throttled
from orders import accounts, downloads, selectors, services, wording
from orders.forms import BuyForm, SignupFinishForm, SignupForm, TimeZoneForm
from orders.login import devices
from orders.models import PAID_STATES, Order
from orders.services import plans

logger = logging.getLogger(__name__)


def _see_other(url: str) -> HttpResponseRedirect:
    # 303: the browser follows a POST's answer with a GET (Stripe Checkout, the order page).
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def _detail_url(order: Order) -> str:
    return reverse("orders:detail", args=[order.public_id])


def _to_payment(step: services.PaymentStep) -> HttpResponseRedirect:
    return _see_other(step.url or _detail_url(step.order))


def _stripe_trouble(
    request: HttpRequest, exc: stripe_api.StripeAPIError, *, action: str, order: Order | None
) -> None:
    """Log what Stripe said (for us); tell the customer what they can do (for them)."""
    logger.warning(
        "stripe trouble on %s (user %s, order %s): %s [%s, request %s]",
        action,
        request.user.pk,
        order.public_id if order else "-",
        exc.message,
        exc.kind,
        exc.request_id,
    )
    messages.error(request, wording.trouble(action, retryable=exc.retryable))


def _order_action(
    request: HttpRequest, order: Order, *, action: str, run: Callable[[], object], done: str
) -> HttpResponse:
    """Run a customer's action on their order; say how it went; back to the order page."""
    try:
        run()
    except services.CheckoutError as exc:
        messages.error(request, exc.message)
    except stripe_api.StripeAPIError as exc:
        _stripe_trouble(request, exc, action=action, order=order)
    else:
        messages.success(request, done)
    return _see_other(_detail_url(order))


@never_cache  # a new purchase token per view of the page, Back included
@require_GET
def catalog(request: HttpRequest) -> HttpResponse:
    # Each product with the plan the customer holds of it ("Your plan" / Manage), if any.
    entries = plans.catalog_plans(entries=selectors.catalog(), user=request.user)
    return render(
        request,
        "orders/catalog.html",
        {"entries": entries, "request_token": secrets.token_urlsafe(24)},
    )


@throttled("signup")
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Ask for an address only; the answer is the same whether or not it has an account."""
    if request.user.is_authenticated:
        return redirect("orders:catalog")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        accounts.account_signup_start(email=form.cleaned_data["email"])
        return _see_other(reverse("orders:signup_sent"))
    return render(request, "registration/signup.html", {"form": form})


@require_GET
def signup_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/signup_sent.html")


@require_http_methods(["GET", "POST"])
def signup_finish(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the email: choose a password, and the account exists and is logged in."""
    try:
        email = accounts.signup_link_email(token=token)
    except accounts.SignupLinkInvalid as exc:
        return render(request, "registration/signup_link.html", {"problem": str(exc)}, status=400)
    if accounts.email_in_use(email=email):
        return render(request, "registration/signup_link.html", {"used": True}, status=409)
    pending = get_user_model()(username=accounts.username_for(email=email), email=email)
    form = SignupFinishForm(pending, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = accounts.account_signup_finish(
                token=token, password=form.cleaned_data["new_password1"]
            )
        except accounts.SignupLinkUsed:
            return render(request, "registration/signup_link.html", {"used": True}, status=409)
        login(request, user, backend="orders.auth.AccountBackend")
        messages.success(request, f"Welcome, {user.email}.")
        response = _see_other(reverse("orders:catalog"))
        devices.device_trust(request, response, user=user)
        return response
    return render(request, "registration/signup_finish.html", {"form": form, "email": email})


@login_required
@require_POST
@stripe_api.customer_facing()
def buy(request: HttpRequest) -> HttpResponse:
    form = BuyForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That purchase could not be started; please try again.")
        return _see_other(reverse("orders:catalog"))
    try:
        step = services.order_checkout_start(user=request.user, **form.cleaned_data)
    except services.CheckoutError as exc:
        messages.error(request, exc.message)
        return _see_other(_detail_url(exc.order) if exc.order else reverse("orders:catalog"))
    except stripe_api.StripeAPIError as exc:
        _stripe_trouble(request, exc, action="pay", order=None)
        return _see_other(reverse("orders:catalog"))
    return _to_payment(step)


@login_required
@require_POST
@stripe_api.customer_facing()
def pay(request: HttpRequest, public_id: str) -> HttpResponse:
    order = selectors.order_get(user=request.user, public_id=public_id)
    if order.status == Order.Status.PAYMENT_PROCESSING:
        messages.info(request, wording.PAYMENT_SETTLING)
        return _see_other(_detail_url(order))
    if not order.is_payable:
        return _see_other(_detail_url(order))
    try:
        step = services.order_payment_start(order=order)
    except services.CheckoutError as exc:
        messages.info(request, exc.message)
        return _see_other(_detail_url(order))
    except stripe_api.StripeAPIError as exc:
        _stripe_trouble(request, exc, action="pay", order=order)
        return _see_other(_detail_url(order))
    return _to_payment(step)


@login_required
@require_GET
@stripe_api.customer_facing()
def checkout_return(request: HttpRequest, public_id: str) -> HttpResponse:
    order = selectors.order_get(user=request.user, public_id=public_id)
    session_id = request.GET.get("session_id", "")
    try:
        order = services.order_return_check(order=order, session_id=session_id, user=request.user)
    except stripe_api.StripeAPIError as exc:
        # The webhook will still confirm it; the page says so and refreshes itself.
        logger.warning(
            "return page for %s: could not confirm with Stripe: %s [%s]",
            order.public_id,
            exc.message,
            exc.kind,
        )
    paid = order.status in PAID_STATES
    receipt_url = selectors.order_receipt_url(order=order)
    waiting = (not paid and order.is_payable) or (paid and not receipt_url and order.paid_at)
    context = {
        "order": order,
        "paid": paid,
        "receipt_url": receipt_url,
        # The page reloads itself while the payment or its receipt is on its way (a meta
        # refresh: no script, within the CSP), every RETURN_REFRESH_SECONDS, for a while.
        "refresh": waiting and _return_tries(request) < RETURN_REFRESH_TRIES,
        "refresh_seconds": RETURN_REFRESH_SECONDS,
        "next_try": _return_tries(request) + 1,
    }
    return render(request, "orders/return.html", context)


RETURN_REFRESH_SECONDS = 3
RETURN_REFRESH_TRIES = 40  # two minutes: then the page says to look at the order later


def _return_tries(request: HttpRequest) -> int:
    tries = request.GET.get("try", "0")
    return int(tries) if tries.isdigit() and len(tries) < 4 else 0


@login_required
@require_GET
def checkout_cancel(request: HttpRequest, public_id: str) -> HttpResponse:
    """Where Stripe Checkout's "back" link lands: nothing was paid."""
    order = selectors.order_get(user=request.user, public_id=public_id)
    return render(request, "orders/cancel.html", {"order": order})


@login_required
@require_http_methods(["GET", "POST"])
@stripe_api.customer_facing()
def order_cancel(request: HttpRequest, public_id: str) -> HttpResponse:
    """GET asks "cancel this order?"; POST cancels it (an unpaid order only)."""
    order = selectors.order_get(user=request.user, public_id=public_id)
    if request.method == "GET":
        if not order.is_payable:
            return redirect(_detail_url(order))
        return render(request, "orders/order_cancel.html", {"order": order})
    return _order_action(
        request,
        order,
        action="cancel_order",
        run=lambda: services.order_cancel(order=order, user=request.user),
        done=f"Order {order.number} is cancelled. Nothing was charged.",
    )


@login_required
@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "orders/order_list.html", {"orders": selectors.order_list(user=request.user)}
    )


@login_required
@require_GET
def order_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    order = selectors.order_get(user=request.user, public_id=public_id)
    subscription = selectors.subscription_summary(order=order)
    context = {
        "order": order,
        "items": order.items.all(),
        "history": selectors.order_history(order=order),
        "refunds": selectors.order_refunds(order=order),
        "receipt_url": selectors.order_receipt_url(order=order),
        "subscription": subscription,
        "deliveries": downloads.order_deliveries(order=order),
        "subscription_active": subscription is not None
        and subscription.status != "canceled"
        and order.status in (Order.Status.PAID, Order.Status.FULFILLED),
    }
    return render(request, "orders/order_detail.html", context)


@login_required
@never_cache
@require_GET
def download(request: HttpRequest, token: str) -> HttpResponse:
    """A digital item's file, streamed from storage to the order's owner (``orders.downloads``);
    anyone else, an expired link or a refunded order gets a page saying why."""
    try:
        opened = downloads.download_open(token=token, user=request.user)
    except downloads.DownloadRefused as refused:
        context = {"message": refused.message}
        return render(request, "orders/download_refused.html", context, status=refused.status)
    return FileResponse(opened.file, as_attachment=True, filename=opened.file_name)


@login_required
@require_http_methods(["GET", "POST"])
@stripe_api.customer_facing()
def subscription_cancel(request: HttpRequest, public_id: str) -> HttpResponse:
    """GET asks for confirmation (when it ends, that it can be resumed); POST cancels at the
    end of the paid period."""
    order = selectors.order_get(user=request.user, public_id=public_id)
    if request.method == "GET":
        subscription = selectors.subscription_summary(order=order)
        if subscription is None or subscription.cancel_at_period_end:
            return redirect(_detail_url(order))
        context = {"order": order, "subscription": subscription}
        return render(request, "orders/subscription_cancel.html", context)
    return _order_action(
        request,
        order,
        action="subscription",
        run=lambda: services.order_subscription_cancel(order=order, user=request.user),
        done="Your subscription is cancelled: it ends at the close of the paid period. "
        "You can resume it until then.",
    )


@login_required
@require_POST
@stripe_api.customer_facing()
def subscription_resume(request: HttpRequest, public_id: str) -> HttpResponse:
    order = selectors.order_get(user=request.user, public_id=public_id)
    return _order_action(
        request,
        order,
        action="subscription",
        run=lambda: services.order_subscription_resume(order=order, user=request.user),
        done="Your subscription is resumed: it will renew as before.",
    )


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """The customer's settings: the time zone their pages show times in."""
    # The zone in use now (their choice, else their browser's, else the site's).
    form = TimeZoneForm(
        request.POST or None, initial={"time_zone": timezone.get_current_timezone_name()}
    )
    if request.method == "POST" and form.is_valid():
        services.customer_time_zone_set(
            user=request.user, time_zone=form.cleaned_data["time_zone"], session=request.session
        )
        messages.success(request, "Saved. Times are now shown in your time zone.")
        return _see_other(reverse("orders:account"))
    return render(request, "orders/account.html", {"form": form})
