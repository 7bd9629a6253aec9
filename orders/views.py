"""Customer pages. Thin: parse the request, call one service or selector, render."""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.stripe_api import StripeAPIError
from config.throttle import throttled
from orders import accounts, selectors, services
from orders.forms import BuyForm, SignupFinishForm, SignupForm
from orders.models import PAID_STATES, Order


def _see_other(url: str) -> HttpResponseRedirect:
    # 303: the browser follows a POST's answer with a GET (Stripe Checkout, the order page).
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def _to_payment(step: services.PaymentStep) -> HttpResponseRedirect:
    if step.url:
        return _see_other(step.url)
    return _see_other(reverse("orders:detail", args=[step.order.public_id]))


@require_GET
def catalog(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "orders/catalog.html",
        {"entries": selectors.catalog(), "request_token": secrets.token_urlsafe(24)},
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
        return _see_other(reverse("orders:catalog"))
    return render(request, "registration/signup_finish.html", {"form": form, "email": email})


@login_required
@require_POST
def buy(request: HttpRequest) -> HttpResponse:
    form = BuyForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That purchase could not be started; please try again.")
        return _see_other(reverse("orders:catalog"))
    try:
        step = services.order_checkout_start(user=request.user, **form.cleaned_data)
    except services.CheckoutError as exc:
        messages.error(request, exc.message)
        return _see_other(reverse("orders:catalog"))
    except StripeAPIError as exc:
        messages.error(request, f"Payment could not be started: {exc.message}")
        return _see_other(reverse("orders:list"))
    return _to_payment(step)


@login_required
@require_POST
def pay(request: HttpRequest, public_id: str) -> HttpResponse:
    order = selectors.order_get(user=request.user, public_id=public_id)
    if not order.is_payable:
        return _see_other(reverse("orders:detail", args=[public_id]))
    try:
        step = services.order_payment_start(order=order)
    except StripeAPIError as exc:
        messages.error(request, f"Payment could not be started: {exc.message}")
        return _see_other(reverse("orders:detail", args=[public_id]))
    return _to_payment(step)


@login_required
@require_GET
def checkout_return(request: HttpRequest, public_id: str) -> HttpResponse:
    order = selectors.order_get(user=request.user, public_id=public_id)
    session_id = request.GET.get("session_id", "")
    try:
        order = services.order_return_check(order=order, session_id=session_id, user=request.user)
    except StripeAPIError as exc:
        # The webhook will still fulfil it; the page says so and refreshes.
        messages.warning(request, f"Could not confirm the payment with Stripe yet: {exc.message}")
    paid = order.status in PAID_STATES
    context = {
        "order": order,
        "paid": paid,
        "receipt_url": selectors.order_receipt_url(order=order),
    }
    return render(request, "orders/return.html", context)


@login_required
@require_GET
def checkout_cancel(request: HttpRequest, public_id: str) -> HttpResponse:
    order = selectors.order_get(user=request.user, public_id=public_id)
    return render(request, "orders/cancel.html", {"order": order})


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
    context = {
        "order": order,
        "items": order.items.all(),
        "history": order.history.all(),
        "refunds": selectors.order_refunds(order=order),
        "receipt_url": selectors.order_receipt_url(order=order),
        "subscription": selectors.subscription_summary(order=order),
        "can_cancel_subscription": order.mode == Order.Mode.SUBSCRIPTION
        and order.status in (Order.Status.PAID, Order.Status.FULFILLED),
    }
    return render(request, "orders/order_detail.html", context)


@login_required
@require_POST
def subscription_cancel(request: HttpRequest, public_id: str) -> HttpResponse:
    order = selectors.order_get(user=request.user, public_id=public_id)
    try:
        services.order_subscription_cancel(order=order, user=request.user)
    except services.CheckoutError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Your subscription will end at the close of the current period.")
    return _see_other(reverse("orders:detail", args=[public_id]))
