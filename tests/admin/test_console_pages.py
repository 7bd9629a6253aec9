"""What the console's pages show and refuse: the index order, no dj-stripe admin left, no
hand edits of mirror rows, secrets masked, amounts per currency, Dashboard links, raw JSON."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import reverse
from djstripe.models import Customer, Invoice, PaymentIntent, Price, Subscription

from billing import stripe_api
from billing.display import mask

pytestmark = pytest.mark.django_db(transaction=True)

MIRRORED = {"customer", "product", "price", "session", "paymentintent", "charge", "refund", "dispute",
            "subscription", "invoice", "webhookendpoint"}  # fmt: skip


def text_of(response) -> str:
    return html.unescape(response.content.decode())


def test_only_the_products_own_stripe_admins_are_registered():
    registered = {
        m._meta.model_name for m in admin.site._registry if m._meta.app_label == "djstripe"
    }
    assert registered == MIRRORED
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label == "djstripe":
            assert type(model_admin).__module__ == "billing.admin.stripe_types", model


def test_no_admin_column_is_shadowed_by_a_model_field(staff):
    """Django shows a model field before an admin method of the same name: a method named
    like a field (``status``, ``amount``, ``customer``) would silently never be used."""
    request = type("Request", (), {"user": staff.superuser})()
    shadowed = []
    for model, model_admin in admin.site._registry.items():
        names = {*model_admin.get_list_display(request), *model_admin.get_readonly_fields(request)}
        field_names = {f.name for f in model._meta.get_fields()}
        shadowed += [
            f"{type(model_admin).__name__}.{name}"
            for name in names
            if isinstance(name, str)
            and callable(getattr(type(model_admin), name, None))
            and name in field_names
        ]
    assert shadowed == []


def test_the_index_puts_orders_first_then_payments_then_webhooks(world, staff):
    response = staff.client("superuser").get(reverse("admin:index"))
    sections = [app["name"] for app in response.context["app_list"]]
    assert sections[:3] == ["Orders", "Customers and payments", "Webhooks and events"]
    payments = [m["object_name"] for m in response.context["app_list"][1]["models"]]
    assert payments[:4] == ["Customer", "Session", "PaymentIntent", "Charge"]
    # the sidebar of every page follows the same order
    page = staff.client("superuser").get(reverse("admin:djstripe_charge_changelist"))
    assert [a["name"] for a in page.context["available_apps"]][:3] == sections[:3]
    # Support sees no webhook endpoints, nor users
    support = staff.client("support").get(reverse("admin:index")).context["app_list"]
    names = {m["object_name"] for app in support for m in app["models"]}
    assert "WebhookEndpoint" not in names and "User" not in names
    assert "Order" in names and "Charge" in names


@pytest.mark.parametrize("method", ["get", "post"])
def test_djstripe_action_views_are_gone(world, staff, method):
    subscription = Subscription.objects.get(id=world.subscription.subscription_id)
    client = staff.client("superuser")
    for url in (
        "/admin/djstripe/subscription/action/_cancel/subscription/",
        "/admin/djstripe/customer/action/_sync_all_instances/customer/",
        "/admin/djstripe/subscription/action/_resync_instances/subscription/",
    ):
        response = getattr(client, method)(url, {"_selected_action": [subscription.pk]})
        assert response.status_code == 404, url
    live = stripe_api.retrieve(object_type="subscription", stripe_id=subscription.id)
    assert live.status == "active" and not live.cancel_at_period_end


def test_mirror_rows_cannot_be_added_changed_or_deleted_by_hand(world, staff):
    customer = Customer.objects.get(id=world.paid.customer_id)
    client = staff.client("superuser")
    change = reverse("admin:djstripe_customer_change", args=[quote(customer.id)])
    assert client.get(reverse("admin:djstripe_customer_add")).status_code == 403
    assert client.post(change, {"email": "hacked@example.com"}).status_code == 403
    assert (
        client.post(reverse("admin:djstripe_customer_delete", args=[customer.pk])).status_code
        == 403
    )
    customer.refresh_from_db()
    assert customer.email == "shopper@example.com"
    assert "delete_selected" not in text_of(
        client.get(reverse("admin:djstripe_customer_changelist"))
    )


def test_the_webhook_endpoint_shows_its_secret_masked(world, staff):
    endpoint = world.endpoint
    response = staff.client("billing").get(
        reverse("admin:djstripe_webhookendpoint_change", args=[quote(endpoint.id)])
    )
    text = text_of(response)
    assert mask(endpoint.secret) in text and endpoint.secret[-4:] in mask(endpoint.secret)
    assert endpoint.secret not in text
    assert str(endpoint.djstripe_uuid) in text


def test_an_object_page_shows_what_support_needs(world, staff):
    intent = PaymentIntent.objects.get(id=world.paid.payment_intent_id)
    response = staff.client("support").get(
        reverse("admin:djstripe_paymentintent_change", args=[quote(intent.id)])
    )
    text = text_of(response)
    # amount per currency, status in words, customer, the linked order and user
    assert "$19.00" in text and "succeeded" in text
    assert world.paid.customer_id in text
    assert f"order {world.paid.public_id} (partly refunded, $19.00, shopper@example.com)" in text
    assert f"user {world.customer.pk} (shopper, shopper@example.com)" in text
    # metadata as a table, created and last synced times
    assert re.search(r"<code>order_id</code>", response.content.decode())
    assert "last synced from stripe" in text.lower()
    # the Dashboard, test mode path
    assert f"https://dashboard.stripe.com/test/payments/{intent.id}" in text
    # the raw JSON: formatted, collapsed, the client secret masked
    raw = re.search(r"<details[^>]*>\s*<summary>.*?Raw data from Stripe.*?</details>", text, re.S)
    assert raw is not None and " open" not in raw.group().split(">", 1)[0]
    assert '"amount": 1900' in raw.group()
    client_secret = intent.stripe_data.get("client_secret")
    if client_secret:
        assert client_secret not in text
    # the sections of the console
    assert "Event history" in text and "Console log" in text


def test_amounts_are_formatted_per_currency(world, staff):
    yen = Price.objects.get(currency="jpy")
    client = staff.client("support")
    page = text_of(client.get(reverse("admin:djstripe_price_change", args=[quote(yen.id)])))
    assert "¥1,500" in page and "15.00" not in page
    assert "<title>" + yen.id + " · ¥1,500 · active" in page
    listing = text_of(client.get(reverse("admin:djstripe_price_changelist")))
    assert "¥1,500" in listing and "€3.50" in listing and "$9.00 / month" in listing
    invoices = client.get(reverse("admin:djstripe_invoice_changelist"))
    assert invoices.status_code == 200 and "$9.00" in text_of(invoices)


def test_searches_that_failed_before_now_work(world, staff):
    client = staff.client("support")
    for url, term in [
        (reverse("admin:djstripe_customer_changelist"), "shopper@example.com"),
        (reverse("admin:djstripe_customer_changelist"), "Shop"),
        (reverse("admin:djstripe_session_changelist"), world.paid.customer_id),
        (reverse("admin:djstripe_session_changelist"), world.paid.checkout_session_id),
        (reverse("admin:djstripe_charge_changelist"), world.paid.payment_intent_id),
        (reverse("admin:djstripe_invoice_changelist"), world.subscription.subscription_id),
    ]:
        response = client.get(url, {"q": term})
        assert response.status_code == 200, (url, term)
        if term != "Shop":
            assert response.context["cl"].result_count >= 1, (url, term)


def test_a_refusal_keeps_the_admin_look_and_says_who_can_help(world, staff):
    response = staff.client("support").get(reverse("admin:djstripe_webhookendpoint_changelist"))
    assert response.status_code == 403
    text = text_of(response)
    assert "Your account (support) may not see this page" in text and "Billing admin" in text


def test_an_object_without_the_order_link_still_shows_its_order(world, staff):
    invoice = Invoice.objects.get(
        stripe_data__parent__subscription_details__subscription=world.subscription.subscription_id
    )
    intent_id = invoice.stripe_data["payments"]["data"][0]["payment"]["payment_intent"]
    assert not PaymentIntent.objects.get(id=intent_id).metadata
    response = staff.client("support").get(
        reverse("admin:djstripe_paymentintent_change", args=[quote(intent_id)])
    )
    text = text_of(response)
    assert f"order {world.subscription.public_id} (complete, $9.00" in text
    assert "no order_id in its metadata; tied through related objects" in text
