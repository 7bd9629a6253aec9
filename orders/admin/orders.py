"""The order's whole story for support: items, totals, refunds, every Stripe object behind it,
one timeline, and the events of all its objects. Read-only: status changes go through
``orders.services``, Stripe changes through ``billing.console``.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from billing import permissions
from billing import selectors as billing_selectors
from billing.admin import views as console_views
from billing.admin.base import ReadOnlyAdmin, ReadOnlyInline, admin_link
from billing.console import reprocess
from billing.display import admin_url, when
from billing.money import format_amount
from billing.viewer import page_link
from orders import selectors, totals
from orders.admin import find
from orders.admin.payments import flag_text, payment_stripe_link, resolve_url
from orders.admin.refunds import after_sale_context
from orders.models import Order, OrderItem, OrderPayment
from orders.services import flags


class OrderItemInline(ReadOnlyInline):
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


class OrderPaymentInline(ReadOnlyInline):
    """Every payment that touched the order, flagged ones included (read-only)."""

    model = OrderPayment
    fields = (
        "stripe_link",
        "kind",
        "status",
        "amount_text",
        "applied",
        "flag_text",
        "source",
        "event_id",
        "created_at",
    )
    readonly_fields = fields
    show_change_link = True
    verbose_name_plural = "payments"

    @admin.display(description="Stripe object")
    def stripe_link(self, payment: OrderPayment) -> str:
        return payment_stripe_link(payment)

    @admin.display(description="amount")
    def amount_text(self, payment: OrderPayment) -> str:
        return format_amount(payment.amount, payment.currency)

    @admin.display(description="flag")
    def flag_text(self, payment: OrderPayment) -> str:
        return flag_text(payment)


# A Stripe id's type -> the payment's column holding it (each indexed).


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):  # view permission alone gives the detail page
    list_display = ("number", "public_id", "buyer", "status", "total", "mode", "created")
    list_filter = ("status", "disputed", "mode")
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
        (
            None,
            {
                "fields": (
                    "number",
                    "public_id",
                    "status",
                    "mode",
                    "user_link",
                    "email",
                    "created_at",
                    "paid_at",
                    "fulfilled_at",
                    "updated_at",
                    "flagged_payments",
                )
            },
        ),
        ("Money", {"fields": ("total", "money")}),
        (
            "Stripe links",
            {
                "fields": (
                    "session_link",
                    "payment_intent_link",
                    "customer_link",
                    "subscription_link",
                    "checkout_attempt",
                )
            },
        ),
    ]
    readonly_fields = (
        "number",
        "public_id",
        "status",
        "mode",
        "user_link",
        "email",
        "created_at",
        "paid_at",
        "fulfilled_at",
        "updated_at",
        "total",
        "money",
        "session_link",
        "payment_intent_link",
        "customer_link",
        "subscription_link",
        "checkout_attempt",
        "flagged_payments",
    )

    def object_find(self, request, object_id, from_field=None):
        # Links use the public order id (ord_...), which support quotes anyway.
        if object_id and object_id.startswith("ord_"):
            return self.get_queryset(request).filter(public_id=object_id).first()
        return super().object_find(request, object_id, from_field)

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
        return page_link(
            "auth_user", order.user_id, f"{order.user.get_username()} ({order.user_id})"
        )

    @admin.display(description="order total", ordering="amount_total")
    def total(self, order: Order) -> str:
        return format_amount(order.amount_total, order.currency)

    @admin.display(description="paid, refunded, net")
    def money(self, order: Order) -> str:
        """Every payment's money, flagged ones marked, and the sums per currency: a second
        payment and its refunds count (the customer paid them), apart from the order's own."""
        money = totals.order_money(order=order)
        if not money.totals:
            return "nothing paid yet"
        rows = format_html_join(
            "",
            '<tr class="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    "money-flagged" if line.flagged else "",
                    payment_stripe_link(line.payment),
                    line.payment.get_status_display(),
                    format_amount(line.paid, line.payment.currency),
                    format_amount(line.refunded, line.payment.currency),
                    format_amount(line.net, line.payment.currency),
                    line.payment.get_flag_display() if line.flagged else "",
                )
                for line in money.lines
            ),
        )
        sums = format_html_join(
            "",
            '<tr class="money-total"><th>all payments</th><td></td><th>{}</th><th>{}</th>'
            "<th>{}</th><td>{}</td></tr>",
            (
                (
                    format_amount(t.paid, t.currency),
                    format_amount(t.refunded, t.currency),
                    format_amount(t.net, t.currency),
                    format_html(
                        "of which flagged: {} paid, {} refunded",
                        format_amount(t.flagged_paid, t.currency),
                        format_amount(t.flagged_refunded, t.currency),
                    )
                    if t.flagged_paid
                    else "",
                )
                for t in money.totals
            ),
        )
        return format_html(
            '<table id="order-money"><thead><tr><th>payment</th><th>status</th><th>paid</th>'
            "<th>refunded</th><th>net</th><th>flag</th></tr></thead><tbody>{}{}</tbody></table>",
            rows,
            sums,
        )

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
            url,
            open_,
            total,
        )

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
        open_flagged = list(order.payments.exclude(flag="").filter(resolved_at=None))
        may_resolve = request.user.has_perm(flags.RESOLVE_PERMISSION)
        return {
            "open_flagged": open_flagged,
            "resolve_url": resolve_url(open_flagged) if open_flagged and may_resolve else "",
            "linked_objects": linked,
            "refunds": [obj for obj in linked if obj.object_type == "refund"],
            "timeline": selectors.order_timeline(
                order=order, history=history, events=events, audits=audits
            ),
            "events": events,
            "audits": audits,
            "can_reprocess": request.user.has_perm(permissions.REPROCESS),
            "reprocess_url": admin_url("orders_order", order.public_id, "reprocess"),
            **after_sale_context(request, order),
        }

    def get_urls(self):
        return [
            path("find/", self.admin_site.admin_view(find.find_view), name="orders_order_find"),
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
        back = admin_url("orders_order", order.public_id)  # its top: the result message
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
