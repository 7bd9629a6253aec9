"""The order's whole story for support: items, totals, refunds, every Stripe object behind it,
one timeline, and the events of all its objects. Read-only: status changes go through
``orders.services``, Stripe changes through ``billing.console``.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from billing import permissions
from billing import selectors as billing_selectors
from billing.admin import views as console_views
from billing.admin.base import ConsoleList, ReadOnlyAdmin, admin_link
from billing.console import reprocess
from billing.display import admin_url, when
from billing.money import format_amount
from orders import selectors, staff
from orders import services as order_services
from orders.models import Order, OrderItem, OrderPayment


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    fields = (
        "description",
        "price_link",
        "quantity",
        "unit_price",
        "line_total",
        "recurring_interval",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        # The order's currency on every line, without a query per line.
        return super().get_queryset(request).select_related("order")

    @admin.display(description="price")
    def price_link(self, item: OrderItem) -> str:
        return admin_link("price", item.price_id)

    @admin.display(description="unit price")
    def unit_price(self, item: OrderItem) -> str:
        return format_amount(item.unit_amount, item.order.currency)

    @admin.display(description="line total")
    def line_total(self, item: OrderItem) -> str:
        return format_amount(item.amount, item.order.currency)


def _payment_stripe_link(payment: OrderPayment) -> str:
    if payment.checkout_session_id:
        return admin_link("checkout.session", payment.checkout_session_id)
    return admin_link("invoice", payment.invoice_id)


def _flag_text(payment: OrderPayment) -> str:
    if not payment.flag:
        return "-"
    state = "resolved" if payment.resolved_at else "open"
    return format_html(
        '<strong class="payment-flag {}">{}</strong> ({})<br><small>{}</small>',
        state, payment.get_flag_display(), state, payment.flag_note,
    )  # fmt: skip


class OrderPaymentInline(admin.TabularInline):
    """Every payment that touched the order, flagged ones included (read-only)."""

    model = OrderPayment
    fields = ("stripe_link", "kind", "status", "amount_text", "applied", "flag_text", "source",
              "event_id", "created_at")  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "payments"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Stripe object")
    def stripe_link(self, payment: OrderPayment) -> str:
        return _payment_stripe_link(payment)

    @admin.display(description="amount")
    def amount_text(self, payment: OrderPayment) -> str:
        return format_amount(payment.amount, payment.currency)

    @admin.display(description="flag")
    def flag_text(self, payment: OrderPayment) -> str:
        return _flag_text(payment)


# A Stripe id's type -> the payment's column holding it (each indexed).
PAYMENT_ID_FIELDS = {
    "checkout.session": "checkout_session_id",
    "payment_intent": "payment_intent_id",
    "invoice": "invoice_id",
    "subscription": "subscription_id",
}


class FlaggedFilter(admin.SimpleListFilter):
    """Flagged or not, open or resolved, or one kind of flag."""

    title = "flagged"
    parameter_name = "flagged"

    def lookups(self, request, model_admin):
        return [
            ("yes", "Yes (open)"),
            ("resolved", "Yes (resolved)"),
            ("no", "No"),
            *((flag, label) for flag, label in OrderPayment.Flag.choices if flag),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        # ``flag IN (…)``, not ``flag <> ''``: the flag's index serves only the former.
        flagged = Q(flag__in=[flag for flag in OrderPayment.Flag.values if flag])
        if value == "yes":
            return queryset.filter(flagged, resolved_at=None)
        if value == "resolved":
            return queryset.filter(flagged).exclude(resolved_at=None)
        if value == "no":
            return queryset.filter(flag="")
        if value in OrderPayment.Flag.values:
            return queryset.filter(flag=value)
        return queryset


@admin.register(OrderPayment)
class OrderPaymentAdmin(ReadOnlyAdmin):
    """Payments as records. Flagged ones (``?flagged=yes``) are support's to look at: a payment
    the order did not expect, for another amount or currency, or a second one."""

    list_display = ("stripe_id_text", "order_link", "kind", "status", "amount_text", "applied",
                    "flag_text", "created_at")  # fmt: skip
    list_filter = (FlaggedFilter, "status", "kind")
    search_fields = ("checkout_session_id",)  # shown; ``get_search_results`` does the finding
    search_help_text = (
        "An order number or id (ord_...), an email, or a Stripe id: cs_, pi_, in_, sub_ (or any "
        "id tied to the order)."
    )
    list_select_related = ("order", "resolved_by")
    actions = ["mark_resolved"]
    fields = ("order_link", "kind", "status", "amount_text", "applied", "stripe_links", "source",
              "event_id", "flag", "flag_note", "resolved_at", "resolved_by", "created_at",
              "updated_at", "succeeded_at")  # fmt: skip
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        """A Stripe id in the column that holds its type; otherwise the payments of the orders
        the term finds (an order number or id, an email ...). Each through an index."""
        term = search_term.strip()
        field = PAYMENT_ID_FIELDS.get(billing_selectors.object_type_for_id(term) or "")
        if field:
            return queryset.filter(**{field: term}), False
        found = selectors.order_search(term=term)
        if found is None:
            return queryset, False
        orders = list(Order.objects.filter(found.query).values_list("pk", flat=True)[:1000])
        return queryset.filter(order_id__in=orders), False

    @admin.display(description="Stripe id")
    def stripe_id_text(self, payment: OrderPayment) -> str:
        return payment.stripe_id

    @admin.display(description="order", ordering="order__public_id")
    def order_link(self, payment: OrderPayment) -> str:
        url = admin_url("orders_order", payment.order.public_id)
        return format_html('<a href="{}">{}</a>', url, payment.order.number)

    @admin.display(description="amount", ordering="amount")
    def amount_text(self, payment: OrderPayment) -> str:
        return format_amount(payment.amount, payment.currency)

    @admin.display(description="flag", ordering="flag")
    def flag_text(self, payment: OrderPayment) -> str:
        return _flag_text(payment)

    @admin.display(description="Stripe objects")
    def stripe_links(self, payment: OrderPayment) -> str:
        links = [
            admin_link(object_type, stripe_id)
            for object_type, stripe_id in (
                ("checkout.session", payment.checkout_session_id),
                ("payment_intent", payment.payment_intent_id),
                ("invoice", payment.invoice_id),
                ("subscription", payment.subscription_id),
            )
            if stripe_id
        ]
        separator = mark_safe("<br>")
        return format_html_join(separator, "{}", ((link,) for link in links)) or "-"

    @admin.action(description="Mark the selected flagged payments resolved",
                  permissions=["resolve"])  # fmt: skip
    def mark_resolved(self, request, queryset):
        marked = order_services.order_payments_resolve(
            actor=request.user, payment_ids=list(queryset.values_list("pk", flat=True))
        )
        messages.success(request, f"{marked} flagged payment(s) marked resolved.")

    def has_resolve_permission(self, request) -> bool:
        return request.user.has_perm(staff.RESOLVE_PAYMENT)


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):  # view permission alone gives the detail page
    list_display = ("number", "public_id", "buyer", "status", "total", "mode", "created")
    list_filter = ("status", "mode")
    search_fields = ("public_id",)  # the box is shown; ``order_search`` does the finding
    search_help_text = (
        "An order number (3F9A0C21) or id (ord_...), an email (or its beginning and *), a "
        "username, an invoice number, or any Stripe id tied to the order: cs_, pi_, ch_, re_, "
        "in_, sub_, cus_, dp_ (or an event evt_)."
    )
    list_select_related = ("user",)
    inlines = (OrderItemInline, OrderPaymentInline)
    change_form_template = "admin/orders/order/change_form.html"
    fieldsets = [
        (None, {"fields": ("number", "public_id", "status", "mode", "user_link", "email",
                           "created_at", "paid_at", "fulfilled_at", "updated_at",
                           "flagged_payments")}),
        ("Totals", {"fields": ("total", "refunded", "net")}),
        ("Stripe links", {"fields": ("session_link", "payment_intent_link", "customer_link",
                                     "subscription_link", "checkout_attempt")}),
    ]  # fmt: skip
    readonly_fields = (
        "number", "public_id", "status", "mode", "user_link", "email", "created_at", "paid_at",
        "fulfilled_at", "updated_at", "total", "refunded", "net", "session_link",
        "payment_intent_link", "customer_link", "subscription_link", "checkout_attempt",
        "flagged_payments",
    )  # fmt: skip

    def get_object(self, request, object_id, from_field=None):
        # Links use the public order id (ord_...), which support quotes anyway.
        if object_id and object_id.startswith("ord_"):
            return self.get_queryset(request).filter(public_id=object_id).first()
        return super().get_object(request, object_id, from_field)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    def get_search_results(self, request, queryset, search_term):
        found = selectors.order_search(term=search_term)
        if found is None:
            return queryset, False
        if found.nothing:
            messages.info(request, found.nothing)
        return queryset.filter(found.query), False

    @admin.display(description="order number")
    def number(self, order: Order) -> str:
        # What the customer reads out ("Order 3F9A0C21"); the search box takes it too.
        return order.number

    # Not "customer": Order.customer is the Stripe customer, and a field wins over a method.
    @admin.display(description="customer", ordering="email")
    def buyer(self, order: Order) -> str:
        return format_html("{}<br><small>{}</small>", order.email or "-", order.user.get_username())

    @admin.display(description="created", ordering="created_at")
    def created(self, order: Order) -> str:
        return when(order.created_at)

    @admin.display(description="user")
    def user_link(self, order: Order) -> str:
        url = admin_url("auth_user", order.user_id)
        return format_html(
            '<a href="{}">{} ({})</a>', url, order.user.get_username(), order.user_id
        )

    @admin.display(description="total", ordering="amount_total")
    def total(self, order: Order) -> str:
        return format_amount(order.amount_total, order.currency)

    @admin.display(description="refunded")
    def refunded(self, order: Order) -> str:
        return format_amount(order.amount_refunded, order.currency)

    @admin.display(description="net (total less refunds)")
    def net(self, order: Order) -> str:
        return format_amount(order.amount_net, order.currency)

    @admin.display(description="flagged payments")
    def flagged_payments(self, order: Order) -> str:
        flagged = order.payments.exclude(flag="")
        total = flagged.count()
        if not total:
            return "none"
        open_ = flagged.filter(resolved_at=None).count()
        url = reverse("admin:orders_orderpayment_changelist") + f"?q={order.public_id}&flagged=yes"
        return format_html(
            '<a href="{}" id="flagged-payments"><strong>{} open</strong></a> of {} flagged',
            url, open_, total,
        )  # fmt: skip

    @admin.display(description="checkout session")
    def session_link(self, order: Order) -> str:
        return admin_link("checkout.session", order.checkout_session_id)

    @admin.display(description="payment intent")
    def payment_intent_link(self, order: Order) -> str:
        return admin_link("payment_intent", order.payment_intent_id)

    @admin.display(description="customer")
    def customer_link(self, order: Order) -> str:
        return admin_link("customer", order.customer_id)

    @admin.display(description="subscription")
    def subscription_link(self, order: Order) -> str:
        return admin_link("subscription", order.subscription_id)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(self.story(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def story(self, request, order: Order) -> dict:
        linked = selectors.order_stripe_objects(order=order)
        ids = [obj.id for obj in linked]
        history = list(order.history.select_related("actor").order_by("-at", "-pk"))
        events = billing_selectors.event_history(stripe_ids=ids)
        audits = billing_selectors.audit_entries(stripe_ids=ids)
        return {
            "linked_objects": linked,
            "refunds": [obj for obj in linked if obj.object_type == "refund"],
            "timeline": selectors.order_timeline(
                order=order, history=history, events=events, audits=audits
            ),
            "events": events,
            "audits": audits,
            "can_reprocess": request.user.has_perm(permissions.REPROCESS),
            "reprocess_url": admin_url("orders_order", order.public_id, "reprocess"),
        }

    def get_urls(self):
        return [
            path(
                "<path:object_id>/reprocess/",
                self.admin_site.admin_view(self.reprocess_view),
                name="orders_order_reprocess",
            ),
            *super().get_urls(),
        ]

    def reprocess_view(self, request, object_id):
        order = self.get_object(request, unquote(object_id))
        if order is None:
            raise Http404("No such order.")
        if not self.has_view_permission(request, order):
            raise PermissionDenied
        back = admin_url("orders_order", order.public_id) + "#event-history"
        if request.method != "POST":
            return HttpResponseRedirect(back)
        if not request.user.has_perm(permissions.REPROCESS):
            raise PermissionDenied
        event_ids = request.POST.getlist("event")
        if not event_ids:
            messages.warning(request, "Choose the events to reprocess first.")
        else:
            console_views.report_reprocess(
                request,
                reprocess.events_reprocess_selected(actor=request.user, event_ids=event_ids),
            )
        return HttpResponseRedirect(back)


# --- Accounts: Django's user admin, searched through indexes --------------------------------

admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class AccountAdmin(ConsoleList, UserAdmin):
    """Django's ``UserAdmin`` (the same pages, forms and permissions), with its search made
    exact: ``icontains`` on four columns reads every account of a big shop."""

    search_fields = ("username",)  # the box is shown; ``get_search_results`` does the finding
    search_help_text = "A username, or an email (any case; or its beginning followed by *)."

    def get_search_results(self, request, queryset, search_term):
        found = selectors.accounts_search(term=search_term)
        return (queryset if found is None else queryset.filter(found)), False
