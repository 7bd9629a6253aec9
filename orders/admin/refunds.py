"""Refunds as records, for support: every refund of an order's payments, whoever made it, the
requests awaiting a Billing admin's approval (``?status__exact=requested``) and the refunds that
failed (``?attention=yes``). Its pages:

- ``/admin/orders/orderrefund/``: the list; ``<pk>/change/``: one refund, with **Approve and
  refund** / **Reject** for a request and **Mark resolved** for a failed one (Billing admin);
- ``refund/<order public id>/``: the Refund page of an order (``refund_form``);
- ``<pk>/approve/``, ``<pk>/reject/``, ``<pk>/resolve/``: each a confirmation (GET), then the
  action (POST); 403 without the ``refund`` permission.

Thin: every rule is ``orders.services.refund_console``'s (and ``refunds.refunds_resolve``).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from billing.admin import views as console_views
from billing.admin.base import ReadOnlyAdmin, admin_link
from billing.console import limits
from billing.display import admin_url, when
from billing.money import format_amount
from billing.stripe_api import StripeAPIError
from orders import selectors
from orders.admin.disputes import due_badge
from orders.admin.refund_form import RefundView
from orders.models import Order, OrderPayment, OrderRefund
from orders.services import refund_console, refunds

R = OrderRefund.Status


def refund_url(order: Order, payment: OrderPayment | None = None) -> str:
    url = reverse("admin:orders_orderrefund_new", args=[order.public_id])
    return f"{url}?payment={payment.pk}" if payment is not None else url


def status_badge(row: OrderRefund) -> str:
    return format_html(
        '<span class="refund-status {}">{}</span>{}',
        row.status,
        row.get_status_display(),
        format_html(" <strong>(failed, {})</strong>", "resolved" if row.resolved_at else "open")
        if row.flagged
        else "",
    )


class AttentionFilter(admin.SimpleListFilter):
    """Failed refunds: the customer did not get the money; support must act."""

    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("yes", "Failed, open"), ("resolved", "Failed, resolved")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(flagged=True, resolved_at=None)
        if self.value() == "resolved":
            return queryset.filter(flagged=True).exclude(resolved_at=None)
        return queryset


@admin.register(OrderRefund)
class OrderRefundAdmin(ReadOnlyAdmin):
    list_display = (
        "created",
        "order_link",
        "money",
        "status_text",
        "reason",
        "refund_link",
        "requested_by",
        "approved_by",
        "origin",
    )
    list_filter = ("status", AttentionFilter, "origin")
    list_select_related = ("order", "requested_by", "approved_by")
    sortable_by = ("created",)
    search_fields = ("refund_id",)  # shown; ``get_search_results`` does the finding
    search_help_text = (
        "A refund id (re_...), a charge id (ch_...), or an order number, id or email (its refunds)."
    )
    change_form_template = "admin/orders/orderrefund/change_form.html"
    fields = (
        "order_link",
        "payment_link",
        "refund_link",
        "charge_link",
        "money",
        "status_text",
        "reason",
        "note",
        "lines_text",
        "origin",
        "requested_by",
        "approved_by",
        "rejected_by",
        "decided_at",
        "decision_note",
        "failure_reason",
        "error",
        "resolved_at",
        "resolved_by",
        "source",
        "event_id",
        "created_at",
        "refunded_at",
        "updated_at",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ("billing/console.css", "shop/console-money.css")}

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term.startswith(("re_", "pyr_")):
            return queryset.filter(refund_id=term), False
        if term.startswith(("ch_", "py_")):
            return queryset.filter(charge_id=term), False
        found = selectors.order_search(term=term)
        if found is None:
            return queryset, False
        orders = list(Order.objects.filter(found.query).values_list("pk", flat=True)[:1000])
        return queryset.filter(order_id__in=orders), False

    @admin.display(description="created", ordering="created_at")
    def created(self, row: OrderRefund) -> str:
        return when(row.created_at)

    @admin.display(description="order")
    def order_link(self, row: OrderRefund) -> str:
        url = admin_url("orders_order", row.order.public_id)
        return format_html('<a href="{}">{}</a>', url, row.order.number)

    @admin.display(description="amount")
    def money(self, row: OrderRefund) -> str:
        return format_amount(row.amount, row.currency)

    @admin.display(description="status")
    def status_text(self, row: OrderRefund) -> str:
        return status_badge(row)

    @admin.display(description="Stripe refund")
    def refund_link(self, row: OrderRefund) -> str:
        return admin_link("refund", row.refund_id) if row.refund_id else "-"

    @admin.display(description="charge")
    def charge_link(self, row: OrderRefund) -> str:
        return admin_link("charge", row.charge_id)

    @admin.display(description="payment")
    def payment_link(self, row: OrderRefund) -> str:
        if row.payment_id is None:
            return "-"
        url = reverse("admin:orders_orderpayment_change", args=[row.payment_id])
        return format_html('<a href="{}">{}</a>', url, row.payment)

    @admin.display(description="by line")
    def lines_text(self, row: OrderRefund) -> str:
        return ", ".join(f"{line['quantity']} x {line['description']}" for line in row.lines) or "-"

    # --- The page and its actions ---

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            user = request.user
            context.update(
                {
                    "refund": obj,
                    "can_decide": obj.status == R.REQUESTED
                    and user.has_perm(refund_console.REFUND),
                    "own_request": obj.requested_by_id == user.pk,
                    "can_resolve": obj.flagged
                    and obj.resolved_at is None
                    and user.has_perm(refund_console.REFUND),
                    "action_urls": {
                        name: reverse(f"admin:orders_orderrefund_{name}", args=[obj.pk])
                        for name in ("approve", "reject", "resolve")
                    },
                }
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "refund/<str:public_id>/",
                wrap(RefundView.as_view(model_admin=self)),
                name="orders_orderrefund_new",
            ),
            *(
                path(
                    f"<path:object_id>/{name}/",
                    wrap(getattr(self, f"{name}_view")),
                    name=f"orders_orderrefund_{name}",
                )
                for name in ("approve", "reject", "resolve")
            ),
            *super().get_urls(),
        ]

    def _row(self, request, object_id) -> OrderRefund:
        if not request.user.has_perm(refund_console.REFUND):
            raise PermissionDenied
        row = self.get_object(request, unquote(object_id))
        if row is None:
            raise Http404("No such refund.")
        return row

    def _decision_page(self, request, row, action: str, **context):
        return TemplateResponse(
            request,
            "admin/orders/orderrefund/decide.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "refund": row,
                "action": action,
                "money": format_amount(row.amount, row.currency),
                "title": {
                    "approve": "Approve and refund",
                    "reject": "Reject the refund request",
                    "resolve": "Mark the failed refund resolved",
                }[action],
                "change_url": reverse("admin:orders_orderrefund_change", args=[row.pk]),
                **context,
            },
        )

    def approve_view(self, request, object_id):
        row = self._row(request, object_id)
        if request.method != "POST":
            return self._decision_page(request, row, "approve")
        if wait := limits.stripe_calls_wait(request.user):
            messages.error(request, limits.wait_text(wait))
            return self._decision_page(request, row, "approve")
        note = request.POST.get("note", "").strip()
        try:
            row = refund_console.refund_approve(actor=request.user, refund_pk=row.pk, note=note)
        except refund_console.RefundRefused as refused:
            messages.error(request, refused.message)
            return self._decision_page(request, row, "approve")
        except StripeAPIError as exc:
            messages.error(
                request, "Stripe did not make the refund: " + console_views.stripe_error_text(exc)
            )
            return self._decision_page(request, row, "approve")
        money = format_amount(row.amount, row.currency)
        if row.refund_id:
            messages.success(
                request,
                f"Approved: {money} refunded ({row.refund_id}, {row.get_status_display()}).",
            )
        else:
            messages.info(request, f"Refund of {money}: {row.get_status_display()}.")
        return HttpResponseRedirect(admin_url("orders_order", row.order.public_id))

    def reject_view(self, request, object_id):
        row = self._row(request, object_id)
        note = request.POST.get("note", "").strip()
        if request.method != "POST" or not note:
            if request.method == "POST":
                messages.error(request, "Say why the request is rejected: the note is required.")
            return self._decision_page(request, row, "reject", note=note)
        row = refund_console.refund_reject(actor=request.user, refund_pk=row.pk, note=note)
        messages.success(request, f"Refund request {row.get_status_display()}.")
        return HttpResponseRedirect(admin_url("orders_order", row.order.public_id))

    def resolve_view(self, request, object_id):
        row = self._row(request, object_id)
        note = request.POST.get("note", "").strip()
        if request.method != "POST" or not note:
            if request.method == "POST":
                messages.error(request, "Say how it was handled: the note is required.")
            return self._decision_page(request, row, "resolve", note=note)
        refunds.refunds_resolve(actor=request.user, refund_ids=[row.pk], note=note)
        messages.success(request, "Failed refund marked resolved.")
        return HttpResponseRedirect(reverse("admin:orders_orderrefund_change", args=[row.pk]))


# --- Refund on a charge's and a payment intent's page ------------------------------------------


def _stripe_page_refund(request, row) -> list[console_views.ObjectAction]:
    """**Refund** on the page of a charge or payment intent of an order's payment, for those
    who may refund (one indexed lookup: the payment recording it)."""
    if not refund_console.may_refund(request.user):
        return []
    intent_id = row.id if row.id.startswith("pi_") else getattr(row, "payment_intent_id", None)
    payment = (
        OrderPayment.objects.filter(payment_intent_id=intent_id).select_related("order").first()
        if intent_id
        else None
    )
    if payment is None or payment.status != OrderPayment.Status.SUCCEEDED:
        return []
    return [console_views.ObjectAction("Refund", refund_url(payment.order, payment), "refund")]


console_views.object_action_register("charge", _stripe_page_refund)
console_views.object_action_register("payment_intent", _stripe_page_refund)


# --- The order page's Refunds and Disputes sections --------------------------------------------


def after_sale_context(request, order: Order) -> dict:
    """What the order's page shows of its refunds (records, whoever made them, with **Refund**
    for those who may) and disputes (each with its deadline): two queries."""
    rows = list(
        order.refunds.select_related("requested_by", "approved_by").order_by("-created_at", "-pk")
    )
    disputes = list(order.disputes.order_by("-created_in_stripe", "-pk"))
    may = (
        refund_console.may_refund(request.user)
        and order.payments.filter(status=OrderPayment.Status.SUCCEEDED).exists()
    )
    return {
        "refund_rows": [
            (row, status_badge(row), format_amount(row.amount, row.currency)) for row in rows
        ],
        "dispute_rows": [
            (row, due_badge(row), format_amount(row.amount, row.currency)) for row in disputes
        ],
        "refund_url": refund_url(order) if may else "",
        "refunds_waiting": sum(1 for row in rows if row.status == R.REQUESTED),
    }
