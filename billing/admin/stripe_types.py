"""The console's page of each mirrored Stripe type: what support needs to see of it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from billing import display, permissions, selectors, viewer
from billing.admin import account
from billing.admin.base import admin_link, register
from billing.admin.stripe_objects import StatusFilter, StripeObjectAdmin
from billing.money import format_amount


def _card(data: dict[str, Any]) -> str:
    details = data.get("payment_method_details") or {}
    card = details.get("card") or {}
    if not card:
        method = data.get("payment_method")
        card = (method.get("card") or {}) if isinstance(method, dict) else {}
    if not card:
        return ""
    expiry = (
        f", expires {card.get('exp_month')}/{card.get('exp_year')}" if card.get("exp_year") else ""
    )
    return f"{(card.get('brand') or 'card').title()} •••• {card.get('last4', '????')}{expiry}"


@register("customer")
class CustomerAdmin(StripeObjectAdmin):
    list_display = (
        "stripe_id",
        "email",
        "name",
        "status_words",
        "subscriber_link",
        "created_in_stripe",
    )
    list_select_related = ("subscriber",)  # the row's name (select box label) is its user
    search_help_text = "A customer id (cus_...), an email, or its beginning followed by *."

    def search_words(self, request, queryset, term):
        return queryset.filter(selectors.email_lookup(term))

    @admin.display(description="name")
    def name(self, obj) -> str:
        return self.data(obj).get("name") or "-"

    @admin.display(description="user (subscriber)")
    def subscriber_link(self, obj) -> str:
        if not obj.subscriber_id:
            return "-"
        return viewer.page_link("auth_user", obj.subscriber_id, f"user {obj.subscriber_id}")

    # The person and their account (``billing.admin.account``): no amount, no link to itself,
    # no "related objects" (its objects are listed whole below).
    summary_fields = (
        "stripe_id",
        "status_words",
        "email",
        "linked_user",
        "created_in_stripe",
        "last_synced",
        "mode",
        "dashboard",
    )

    def get_fieldsets(self, request, obj=None):
        details = obj is not None and any(v for _, v in self.type_facts(self.data(obj), obj))
        return [
            (None, {"fields": self.summary_fields}),
            *([("Details", {"fields": ("facts",)})] if details else []),
            ("Raw data from Stripe", {"fields": ("raw",), "classes": ("collapse",)}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [*self.summary_fields, "facts", "raw"]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        response = super().render_change_form(request, context, add, change, form_url, obj)
        if obj is not None:
            sections = account.account_sections(obj)
            ids = [obj.id, *(i for section in sections for i in section.stripe_ids)]
            response.context_data.update(
                account_sections=sections, events=selectors.event_history(stripe_ids=ids)
            )
        return response

    def type_facts(self, data, obj):
        return [
            ("name", data.get("name")),
            (
                "balance",
                format_amount(data.get("balance"), data.get("currency"))
                if data.get("balance")
                else "",
            ),
            ("description", data.get("description")),
        ]


@register("product")
class ProductAdmin(StripeObjectAdmin):
    list_display = ("stripe_id", "name", "status_words", "created_in_stripe")
    search_fields = ("name",)
    search_help_text = "A product id (prod_...) or part of a name."

    def search_words(self, request, queryset, term):
        # The catalog is small: Django's own search, by part of a name.
        return admin.ModelAdmin.get_search_results(self, request, queryset, term)[0]

    def type_facts(self, data, obj):
        prices = reverse("admin:djstripe_price_changelist") + f"?q={obj.id}"
        return [
            ("name", data.get("name")),
            ("description", data.get("description")),
            ("prices", format_html('<a href="{}">prices of this product</a>', prices)),
        ]


@register("price")
class PriceAdmin(StripeObjectAdmin):
    list_display = (
        "stripe_id",
        "product_link",
        "amount_formatted",
        "status_words",
        "created_in_stripe",
    )
    list_select_related = ("product",)  # the row's name (select box label) is its product
    search_fields = ("nickname", "lookup_key")
    id_fields = {"product": "product_id"}
    search_help_text = "A price id (price_...), a product id (prod_...), a nickname or lookup key."

    def search_words(self, request, queryset, term):
        # The catalog is small: Django's own search.
        return admin.ModelAdmin.get_search_results(self, request, queryset, term)[0]

    @admin.display(description="product")
    def product_link(self, obj) -> str:
        name = obj.product.name if obj.product_id and obj.product else None
        return admin_link("product", obj.product_id, name)

    def type_facts(self, data, obj):
        return [
            ("type", (data.get("type") or "").replace("_", " ")),
            ("nickname", data.get("nickname")),
            ("lookup key", data.get("lookup_key")),
        ]


@register("checkout.session")
class SessionAdmin(StripeObjectAdmin):
    statuses = ("open", "complete", "expired")
    list_filter = (StatusFilter,)
    id_fields = {
        "customer": "customer_id",
        "payment_intent": "payment_intent_id",
        "subscription": "subscription_id",
    }
    search_help_text = (
        "A session id (cs_...), or the id of its customer, payment intent or subscription."
    )

    def type_facts(self, data, obj):
        details = data.get("customer_details") or {}
        return [
            ("mode", data.get("mode")),
            ("payment status", (data.get("payment_status") or "").replace("_", " ")),
            ("client reference", data.get("client_reference_id")),
            ("customer email", details.get("email") or data.get("customer_email")),
            ("expires", display.timestamp(data.get("expires_at"))),
        ]


@register("payment_intent")
class PaymentIntentAdmin(StripeObjectAdmin):
    statuses = (
        "requires_payment_method",
        "processing",
        "requires_capture",
        "canceled",
        "succeeded",
    )
    list_filter = (StatusFilter,)
    id_fields = {"customer": "customer_id"}
    search_help_text = "A payment intent id (pi_...), a customer id (cus_...) or an order id."

    def type_facts(self, data, obj):
        error = data.get("last_payment_error") or {}
        return [
            ("payment method", _card(data)),
            ("amount received", format_amount(data.get("amount_received"), data.get("currency"))),
            ("last payment error", error.get("message") or error.get("code")),
            ("description", data.get("description")),
        ]


@register("charge")
class ChargeAdmin(StripeObjectAdmin):
    statuses = ("succeeded", "pending", "failed")
    list_filter = (StatusFilter,)
    id_fields = {"customer": "customer_id", "payment_intent": "payment_intent_id"}
    status_field = "status"
    search_help_text = (
        "A charge id (ch_...), a payment intent id (pi_...), a customer id or an order id."
    )

    def type_facts(self, data, obj):
        outcome = data.get("outcome") or {}
        receipt = data.get("receipt_url")
        return [
            ("payment method", _card(data)),
            ("outcome", outcome.get("seller_message")),
            ("failure", data.get("failure_message") or data.get("failure_code")),
            ("risk level", outcome.get("risk_level")),
            (
                "receipt",
                format_html('<a href="{}" rel="noopener">receipt</a>', receipt) if receipt else "",
            ),
        ]


@register("refund")
class RefundAdmin(StripeObjectAdmin):
    list_display = (
        "stripe_id",
        "status_words",
        "amount_formatted",
        "charge_link",
        "order",
        "created_in_stripe",
    )
    id_fields = {"charge": "charge_id"}
    search_help_text = "A refund id (re_...), a charge id (ch_...) or an order id."

    @admin.display(description="charge")
    def charge_link(self, obj) -> str:
        return admin_link("charge", obj.charge_id)

    def type_facts(self, data, obj):
        return [
            ("reason", (data.get("reason") or "").replace("_", " ")),
            ("failure reason", (data.get("failure_reason") or "").replace("_", " ")),
        ]


@register("dispute")
class DisputeAdmin(StripeObjectAdmin):
    """The mirrored dispute as Stripe has it (the shop's list with deadlines: Disputes, under
    Orders). Evidence is submitted in Stripe's Dashboard, not here."""

    statuses = ("needs_response", "under_review", "warning_needs_response", "won", "lost")
    list_filter = (StatusFilter,)
    list_display = (
        "stripe_id",
        "status_words",
        "amount_formatted",
        "charge_link",
        "created_in_stripe",
    )
    id_fields = {"charge": "charge_id", "payment_intent": "payment_intent_id"}
    search_help_text = "A dispute id (du_... or dp_...), a charge id (ch_...) or an order id."

    @admin.display(description="charge")
    def charge_link(self, obj) -> str:
        return admin_link("charge", obj.charge_id)

    def type_facts(self, data, obj):
        details = data.get("evidence_details") or {}
        return [
            ("reason", (data.get("reason") or "").replace("_", " ")),
            ("evidence due by", display.timestamp(details.get("due_by"))),
            ("evidence submitted", f"{details.get('submission_count') or 0} time(s)"),
            ("charge refundable", "yes" if data.get("is_charge_refundable") else "no"),
        ]


@register("subscription")
class SubscriptionAdmin(StripeObjectAdmin):
    statuses = ("active", "trialing", "past_due", "canceled", "unpaid", "incomplete")
    list_filter = (StatusFilter,)
    id_fields = {"customer": "customer_id"}
    search_help_text = "A subscription id (sub_...), a customer id (cus_...) or an order id."

    def type_facts(self, data, obj):
        items = ((data.get("items") or {}).get("data")) or []
        period_end = display.subscription_period_end(data)
        prices = format_html_join(
            ", ",
            "{} (quantity {})",
            [
                (admin_link("price", display.stripe_id(i.get("price"))), i.get("quantity") or 1)
                for i in items
            ],
        )
        return [
            ("items", prices),
            ("current period ends", display.timestamp(period_end)),
            ("cancels at period end", "yes" if data.get("cancel_at_period_end") else ""),
            ("canceled at", display.timestamp(data.get("canceled_at"))),
        ]


@register("invoice")
class InvoiceAdmin(StripeObjectAdmin):
    statuses = ("draft", "open", "paid", "uncollectible", "void")
    list_filter = (StatusFilter,)
    # Since API version 2025-03-31 an invoice names its subscription and payment in its data
    # (indexed on PostgreSQL by migration billing.0009).
    id_fields = {
        "customer": "customer_id",
        "subscription": "stripe_data__parent__subscription_details__subscription",
        "payment_intent": "stripe_data__payments__data__0__payment__payment_intent",
    }
    search_help_text = (
        "An invoice id (in_...) or number, or the id of its customer, subscription or payment "
        "intent."
    )

    def search_words(self, request, queryset, term):
        return queryset.filter(stripe_data__number=term)

    def type_facts(self, data, obj):
        currency = data.get("currency")
        return [
            ("number", data.get("number")),
            ("billing reason", (data.get("billing_reason") or "").replace("_", " ")),
            ("amount due", format_amount(data.get("amount_due"), currency)),
            ("amount paid", format_amount(data.get("amount_paid"), currency)),
            ("amount remaining", format_amount(data.get("amount_remaining"), currency)),
            (
                "period",
                " → ".join(
                    display.day(t)
                    for t in (data.get("period_start"), data.get("period_end"))
                    if display.timestamp(t)
                ),
            ),
        ]


@register("webhook_endpoint")
class WebhookEndpointAdmin(StripeObjectAdmin):
    list_display = ("stripe_id", "url", "status_words", "api_version", "created_in_stripe")
    search_fields = ("url",)
    search_help_text = "An endpoint id (we_...) or part of its URL."

    def search_words(self, request, queryset, term):
        # A handful of endpoints: Django's own search.
        return admin.ModelAdmin.get_search_results(self, request, queryset, term)[0]

    summary_fields = (
        "stripe_id",
        "status_words",
        "url",
        "api_version",
        "secret_masked",
        "created_in_stripe",
        "last_synced",
        "mode",
        "dashboard",
    )

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) and request.user.has_perm(
            permissions.MANAGE_WEBHOOK_ENDPOINTS
        )

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    @admin.display(description="signing secret")
    def secret_masked(self, obj) -> str:
        return display.mask(obj.secret) or "-"

    def type_facts(self, data, obj):
        return [
            ("enabled events", ", ".join(obj.enabled_events or [])),
            ("local uuid (in the URL)", str(obj.djstripe_uuid)),
            ("signature tolerance", f"{obj.djstripe_tolerance} s"),
            ("description", data.get("description")),
        ]
