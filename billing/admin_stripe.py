"""Read-only admin pages for the mirrored Stripe objects: the product's own, not dj-stripe's.

dj-stripe's model admins are unregistered here: they render ``default_api_key`` in full,
expose action views that check only ``is_staff`` (cancel a subscription, sync from Stripe),
let mirror rows be edited by hand, and fail on several pages. Each page here shows what
support needs for its type, links the order and user through the metadata link keys, and
offers the console's actions (Edit Stripe metadata, Resync from Stripe, Reprocess) to those
allowed. Changes go to Stripe through the console's services (``billing.console``); the mirror is never edited here.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import admin, messages
from django.db.models import Q
from django.http import Http404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from djstripe import admin as djstripe_admin  # noqa: F401 - registers dj-stripe's admins first

from billing import admin_views, display, metadata, permissions, selectors, types
from billing.admin_lists import ConsoleList
from billing.money import format_amount
from billing.stripe_api import StripeAPIError

# What a pasted Stripe id looks like (cus_..., pi_..., cs_test_...).
STRIPE_ID = re.compile(r"^[a-z]{2,6}_[0-9A-Za-z_]{6,}$")

for _model in [m for m in admin.site._registry if m._meta.app_label == "djstripe"]:
    admin.site.unregister(_model)


def admin_link(object_type: str, stripe_id: str | None, text: str | None = None) -> str:
    """A link to the console page of a mirrored object by its Stripe id (no query)."""
    if not stripe_id:
        return "-"
    if not has_page(object_type):
        return stripe_id
    url = display.admin_url(f"djstripe_{types.model_for(object_type)._meta.model_name}", stripe_id)
    return format_html('<a href="{}">{}</a>', url, text or stripe_id)


def order_link(public_id: str | None) -> str:
    if not public_id:
        return "-"
    url = display.admin_url("orders_order", public_id)
    return format_html('<a href="{}">{}</a>', url, public_id)


def json_block(data: Any) -> str:
    """Stripe data for a page: formatted, secrets masked, in a scrolling block."""
    return format_html('<pre class="console-json">{}</pre>', display.pretty_json(data))


def facts_table(rows: list[tuple[str, Any]]) -> str:
    rows = [(label, value) for label, value in rows if value not in (None, "", [], {})]
    if not rows:
        return "-"
    return format_html(
        '<table class="console-facts">{}</table>',
        format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
    )


class StatusFilter(admin.SimpleListFilter):
    """Filter on Stripe's own ``status``: fixed choices (the type's statuses), and a lookup
    indexed with the list's ordering (migration billing.0009)."""

    title = "status"
    parameter_name = "status"

    def __init__(self, request, params, model, model_admin):
        self.status_field = model_admin.status_field
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        return [(value, value.replace("_", " ")) for value in model_admin.statuses]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.status_field: self.value()})
        return queryset


class StripeObjectAdmin(ConsoleList, admin.ModelAdmin):
    """The shared page of a mirrored Stripe object. Subclasses set the type and its facts."""

    object_type = ""
    statuses: tuple[str, ...] = ()
    change_form_template = "admin/billing/stripe_object/change_form.html"
    list_display = (
        "stripe_id",
        "status_words",
        "amount_formatted",
        "customer_link",
        "order",
        "created_in_stripe",
    )
    list_display_links = ("stripe_id",)
    search_fields = ("id",)  # the box is shown; ``get_search_results`` does the finding
    search_help_text = "A Stripe id, or an order id (ord_...) to find its objects."
    # Another object's type -> the column (or indexed JSON path) holding its id, which a
    # search by that object's id matches.
    id_fields: dict[str, str] = {}
    # Where Stripe's status is: the data (dj-stripe 2.11 keeps most fields there) or a column.
    status_field = "stripe_data__status"
    ordering = ("-created", "-djstripe_id")
    actions = ["resync_selected"]
    summary_fields = (
        "stripe_id", "status_words", "amount_formatted", "customer_link", "linked_order", "linked_user",
        "created_in_stripe", "last_synced", "mode", "dashboard",
    )  # fmt: skip

    # --- Read-only: changes go to Stripe first, through services ---

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_resync_permission(self, request) -> bool:
        return request.user.has_perms(permissions.resync_permissions(object_type=self.object_type))

    def may_edit_metadata(self, request) -> bool:
        return request.user.has_perms(
            permissions.metadata_permissions(object_type=self.object_type)
        )

    # --- Finding rows: by Stripe id in the URL, so links need no lookup ---

    def get_object(self, request, object_id, from_field=None):
        if object_id and not object_id.isdigit():
            return self.get_queryset(request).filter(id=object_id).first()
        return super().get_object(request, object_id, from_field)

    def get_search_results(self, request, queryset, search_term):
        """Exact, indexed matches only: an order's objects through its references, an id, the
        objects holding an id of another type, or the words ``search_words`` knows."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.startswith("ord_"):
            return queryset.filter(id__in=metadata.tied_stripe_ids("order_id", term)), False
        if STRIPE_ID.match(term):
            query = Q(id=term)
            if field := self.id_fields.get(selectors.object_type_for_id(term) or ""):
                query |= Q(**{field: term})
            return queryset.filter(query), False
        return self.search_words(request, queryset, term), False

    def search_words(self, request, queryset, term: str):
        """Rows found by a term that is no id (none, unless the type says how)."""
        return queryset.none()

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": self.summary_fields}),
            ("Details", {"fields": ("facts", "related")}),
            ("Raw data from Stripe", {"fields": ("raw",), "classes": ("collapse",)}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [*self.summary_fields, "facts", "related", "raw"]

    # --- Columns and fields (all read from the row; no query per row) ---

    def data(self, obj) -> dict[str, Any]:
        return obj.stripe_data or {}

    @admin.display(description="Stripe id", ordering="id")
    def stripe_id(self, obj) -> str:
        return obj.id

    # Named apart from the model's own columns: Django shows a field before an admin method.
    @admin.display(description="status")
    def status_words(self, obj) -> str:
        return display.status_text(self.object_type, self.data(obj))

    @admin.display(description="amount")
    def amount_formatted(self, obj) -> str:
        return display.amount_text(self.object_type, self.data(obj)) or "-"

    @admin.display(description="customer")
    def customer_link(self, obj) -> str:
        customer = obj.id if self.object_type == "customer" else self.data(obj).get("customer")
        return admin_link("customer", display.stripe_id(customer))

    @admin.display(description="order")
    def order(self, obj) -> str:
        return order_link((obj.metadata or {}).get("order_id"))

    @admin.display(description="linked order")
    def linked_order(self, obj) -> str:
        return self._link_cell(obj, "order_id")

    @admin.display(description="linked user")
    def linked_user(self, obj) -> str:
        return self._link_cell(obj, "user_id")

    def _link_cell(self, obj, key: str) -> str:
        value = (obj.metadata or {}).get(key)
        if not value:
            tied = metadata.tied_targets(key, obj.id)
            if not tied:
                return "-"
            return format_html(
                '{} <span class="help">(no {} in its metadata; tied through related objects)</span>',
                format_html_join(
                    ", ", '<a href="{}">{}</a>', ((t.admin_url, t.label) for t in tied)
                ),
                key,
            )
        targets = self._targets(obj)
        target = targets.get(key)
        if target is None:
            return format_html(
                '<span class="console-warning">{}={} names no existing row</span>', key, value
            )
        return format_html('<a href="{}">{}</a>', target.admin_url, target.label)

    def _targets(self, obj) -> dict[str, metadata.LinkTarget | None]:
        # Resolved once per page (two queries at most), reused by both fields and the context.
        if getattr(obj, "_console_targets", None) is None:
            obj._console_targets = metadata.link_targets(obj.metadata or {})
        return obj._console_targets

    @admin.display(description="created in Stripe", ordering="created")
    def created_in_stripe(self, obj) -> str:
        return display.when(obj.created)

    @admin.display(description="last synced from Stripe")
    def last_synced(self, obj) -> str:
        state = selectors.sync_states(stripe_ids=[obj.id]).get(obj.id)
        return display.when(selectors.last_synced(row=obj, state=state))

    @admin.display(description="mode")
    def mode(self, obj) -> str:
        return "live" if obj.livemode else "test" if obj.livemode is False else "unknown"

    @admin.display(description="Stripe Dashboard")
    def dashboard(self, obj) -> str:
        url = display.dashboard_url(self.object_type, obj.id, obj.livemode)
        if not url:
            return "-"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener noreferrer">View in Stripe Dashboard</a>',
            url,
        )

    @admin.display(description="facts")
    def facts(self, obj) -> str:
        return facts_table(self.type_facts(self.data(obj), obj))

    def type_facts(self, data: dict[str, Any], obj) -> list[tuple[str, Any]]:
        return [("description", data.get("description"))]

    @admin.display(description="related objects")
    def related(self, obj) -> str:
        data = self.data(obj)
        rows = []
        for field in ("payment_intent", "latest_charge", "charge", "invoice", "latest_invoice",
                      "subscription", "product", "default_price"):  # fmt: skip
            stripe_id = display.stripe_id(data.get(field))
            object_type = selectors.object_type_for_id(stripe_id or "")
            if stripe_id:
                rows.append((field.replace("_", " "), admin_link(object_type or "", stripe_id)))
        return facts_table(rows)

    @admin.display(description="raw data (secrets masked)")
    def raw(self, obj) -> str:
        return json_block(self.data(obj))

    # --- The page: summary, metadata, console log, event history, actions ---

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(admin_views.object_context(self, request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/metadata/",
                wrap(admin_views.MetadataEditView.as_view(model_admin=self)),
                name="{}_{}_metadata".format(*info),
            ),
            path(
                "<path:object_id>/resync/",
                wrap(admin_views.ResyncView.as_view(model_admin=self)),
                name="{}_{}_resync".format(*info),
            ),
            path(
                "<path:object_id>/reprocess/",
                wrap(admin_views.ReprocessView.as_view(model_admin=self)),
                name="{}_{}_reprocess".format(*info),
            ),
            path(
                "<path:object_id>/fetch_events/",
                wrap(admin_views.FetchEventsView.as_view(model_admin=self)),
                name="{}_{}_fetch_events".format(*info),
            ),
            # dj-stripe's action views lived here; make sure nothing answers in their place.
            path("action/<path:rest>", wrap(self.gone)),
            *super().get_urls(),
        ]

    def gone(self, request, rest: str):
        raise Http404("dj-stripe's admin actions are not available.")

    # --- Changelist action ---

    @admin.action(description="Resync from Stripe", permissions=["resync"])
    def resync_selected(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        try:
            outcome = admin_views.resync_many(self, request, ids)
        except StripeAPIError as exc:
            self.message_user(request, admin_views.stripe_error_text(exc), messages.ERROR)
            return None
        return outcome

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


def has_page(object_type: str) -> bool:
    """Whether the console has a page for objects of this type."""
    model = types.model_for(object_type)
    return model is not None and admin.site.is_registered(model)


def register(object_type: str):
    """Register the console's admin for a mirrored type of the registry (``billing.types``)."""

    def decorator(admin_class):
        admin_class.object_type = object_type
        return admin.register(types.model_for(object_type))(admin_class)

    return decorator


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
        url = display.admin_url("auth_user", obj.subscriber_id)
        return format_html('<a href="{}">user {}</a>', url, obj.subscriber_id)

    def type_facts(self, data, obj):
        return [
            ("email", data.get("email")),
            ("name", data.get("name")),
            ("user (subscriber)", self.subscriber_link(obj)),
            ("balance", format_amount(data.get("balance"), data.get("currency"))
             if data.get("balance") else ""),
            ("description", data.get("description")),
        ]  # fmt: skip


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
            ("receipt", format_html('<a href="{}" rel="noopener">receipt</a>', receipt)
             if receipt else ""),
        ]  # fmt: skip


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


@register("subscription")
class SubscriptionAdmin(StripeObjectAdmin):
    statuses = ("active", "trialing", "past_due", "canceled", "unpaid", "incomplete")
    list_filter = (StatusFilter,)
    id_fields = {"customer": "customer_id"}
    search_help_text = "A subscription id (sub_...), a customer id (cus_...) or an order id."

    def type_facts(self, data, obj):
        items = ((data.get("items") or {}).get("data")) or []
        period_end = data.get("current_period_end") or (
            items[0].get("current_period_end") if items else None
        )
        prices = format_html_join(
            ", ", "{} (quantity {})",
            [(admin_link("price", display.stripe_id(i.get("price"))), i.get("quantity") or 1)
             for i in items],
        )  # fmt: skip
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
            ("period", " → ".join(
                f"{t:%Y-%m-%d}" for t in (display.timestamp(data.get("period_start")),
                                           display.timestamp(data.get("period_end"))) if t)),
        ]  # fmt: skip


@register("webhook_endpoint")
class WebhookEndpointAdmin(StripeObjectAdmin):
    list_display = ("stripe_id", "url", "status_words", "api_version", "created_in_stripe")
    search_fields = ("url",)
    search_help_text = "An endpoint id (we_...) or part of its URL."

    def search_words(self, request, queryset, term):
        # A handful of endpoints: Django's own search.
        return admin.ModelAdmin.get_search_results(self, request, queryset, term)[0]

    summary_fields = (
        "stripe_id", "status_words", "url", "api_version", "secret_masked", "created_in_stripe",
        "last_synced", "mode", "dashboard",
    )  # fmt: skip

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
