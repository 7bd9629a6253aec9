"""Payments as records, for support: every payment that touched an order, flagged ones to look
at (a payment the order did not expect, for another amount or currency, or a second one)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from billing import selectors as billing_selectors
from billing.admin.base import ReadOnlyAdmin, admin_link
from billing.display import admin_url
from billing.money import format_amount
from orders import selectors
from orders.models import Order, OrderPayment
from orders.services import flags


def payment_stripe_link(payment: OrderPayment) -> str:
    """The payment's own Stripe object: its session, its invoice, or its payment intent."""
    if payment.checkout_session_id:
        return admin_link("checkout.session", payment.checkout_session_id)
    if payment.invoice_id:
        return admin_link("invoice", payment.invoice_id)
    return admin_link("payment_intent", payment.payment_intent_id)


def flag_text(payment: OrderPayment) -> str:
    if not payment.flag:
        return "-"
    state = "resolved" if payment.resolved_at else "open"
    return format_html(
        '<strong class="payment-flag {}">{}</strong> ({})<br><small>{}</small>',
        state,
        payment.get_flag_display(),
        state,
        payment.flag_note,
    )


def resolve_url(payments: list[OrderPayment]) -> str:
    """The page resolving these flagged payments (a note, then a confirmation)."""
    ids = ",".join(str(p.pk) for p in payments)
    return f"{reverse('admin:orders_orderpayment_resolve')}?ids={ids}"


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

    list_display = (
        "stripe_id_text",
        "order_link",
        "kind",
        "status",
        "amount_text",
        "applied",
        "flag_text",
        "created_at",
    )
    list_filter = (FlaggedFilter, "status", "kind")
    search_fields = ("checkout_session_id",)  # shown; ``get_search_results`` does the finding
    search_help_text = (
        "An order number or id (ord_...), an email, or a Stripe id: cs_, pi_, in_, sub_ (or any "
        "id tied to the order)."
    )
    list_select_related = ("order", "resolved_by")
    actions = ["mark_resolved"]
    fields = (
        "order_link",
        "kind",
        "status",
        "amount_text",
        "applied",
        "stripe_links",
        "source",
        "event_id",
        "flag",
        "flag_note",
        "resolved_at",
        "resolved_by",
        "created_at",
        "updated_at",
        "succeeded_at",
    )
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
        return flag_text(payment)

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

    @admin.action(description="Resolve the selected flagged payments…", permissions=["resolve"])
    def mark_resolved(self, request, queryset):
        ids = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True)[:100])
        return HttpResponseRedirect(f"{reverse('admin:orders_orderpayment_resolve')}?ids={ids}")

    def has_resolve_permission(self, request) -> bool:
        return request.user.has_perm(flags.RESOLVE_PERMISSION)

    def get_urls(self):
        return [
            path(
                "resolve/",
                self.admin_site.admin_view(self.resolve_view),
                name="orders_orderpayment_resolve",
            ),
            *super().get_urls(),
        ]

    def resolve_view(self, request):
        """Resolve flagged payments: what they are, a note saying how each was handled, then
        a confirmation; the note goes in the order's history and the audit log."""
        if not self.has_resolve_permission(request):
            raise PermissionDenied
        source = request.POST if request.method == "POST" else request.GET
        ids = [int(i) for i in source.get("ids", "").split(",") if i.strip().isdigit()][:100]
        payments = list(
            OrderPayment.objects.filter(pk__in=ids, resolved_at=None)
            .exclude(flag="")
            .select_related("order")
        )
        note = request.POST.get("note", "").strip()
        if request.method == "POST" and payments:
            try:
                marked = flags.order_payments_resolve(
                    actor=request.user, payment_ids=[p.pk for p in payments], note=note
                )
            except flags.ResolveRefused as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, f"{marked} flagged payment(s) marked resolved: {note}")
                if len({p.order_id for p in payments}) == 1:
                    return HttpResponseRedirect(
                        admin_url("orders_order", payments[0].order.public_id)
                    )
                return HttpResponseRedirect(reverse("admin:orders_orderpayment_changelist"))
        return TemplateResponse(
            request,
            "admin/orders/orderpayment/resolve.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Resolve flagged payments",
                "payments": [
                    (p, payment_stripe_link(p), format_amount(p.amount, p.currency), flag_text(p))
                    for p in payments
                ],
                "ids": ",".join(str(p.pk) for p in payments),
                "note": note,
            },
        )
