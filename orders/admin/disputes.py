"""Disputes, for support: every dispute (chargeback or inquiry) by its evidence deadline, the
soonest first (overdue and due within three days marked), with its order and its page in
Stripe's Dashboard, where evidence is submitted. Its pages:

- ``/admin/orders/orderdispute/``: the list (filters: state, deadline);
- ``<pk>/change/``: one dispute, with its note (``<pk>/note/``, POST; audited).

The list's order and filters are indexed (``respond_by``, ``state``), its count capped.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from billing.admin.base import ReadOnlyAdmin, admin_link
from billing.display import admin_url, dashboard_url, when
from billing.money import format_amount
from orders import selectors
from orders.models import Order, OrderDispute
from orders.services import disputes

St = OrderDispute.State
SOON = timedelta(days=3)


def due_badge(row: OrderDispute, now=None) -> str:
    """The deadline, marked when it is past or within three days."""
    if row.respond_by is None:
        return when(row.due_by) if row.due_by and row.open else "-"
    now = now or timezone.now()
    left = row.respond_by - now
    if left < timedelta(0):
        css, words = "overdue", f"overdue by {_days(-left)}"
    elif left <= SOON:
        css, words = "soon", f"due in {_days(left)}"
    else:
        css, words = "later", f"in {_days(left)}"
    return format_html(
        '<span class="dispute-due {}">{}</span> <small>({})</small>',
        css,
        when(row.respond_by),
        words,
    )


def _days(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


def dispute_dashboard(row: OrderDispute) -> str:
    url = dashboard_url("dispute", row.dispute_id)
    if not url:
        return "-"
    return format_html(
        '<a href="{}" target="_blank" rel="noopener noreferrer">Open in Stripe Dashboard</a>', url
    )


class DeadlineFilter(admin.SimpleListFilter):
    title = "evidence deadline"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue"), ("soon", "Due within 3 days"), ("open", "Response needed")]

    def queryset(self, request, queryset):
        now = timezone.now()
        needs = queryset.filter(state=St.NEEDS_RESPONSE)
        if self.value() == "overdue":
            return needs.filter(respond_by__lt=now)
        if self.value() == "soon":
            return needs.filter(respond_by__gte=now, respond_by__lte=now + SOON)
        if self.value() == "open":
            return needs
        return queryset


@admin.register(OrderDispute)
class OrderDisputeAdmin(ReadOnlyAdmin):
    list_display = (
        "due",
        "dispute_link",
        "state_text",
        "money",
        "reason_text",
        "order_link",
        "dashboard",
    )
    list_display_links = None
    list_filter = (DeadlineFilter, "state")
    list_select_related = ("order",)
    sortable_by = ("due",)
    search_fields = ("dispute_id",)  # shown; ``get_search_results`` does the finding
    search_help_text = "A dispute id (du_... or dp_...), a charge id (ch_...) or an order number."
    change_form_template = "admin/orders/orderdispute/change_form.html"
    fields = (
        "dispute_link",
        "state_text",
        "stripe_status",
        "money",
        "funds",
        "reason_text",
        "inquiry",
        "due",
        "charge_link",
        "order_link",
        "dashboard",
        "note",
        "noted_by",
        "created_in_stripe",
        "closed_at",
        "updated_at",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ("billing/console.css", "shop/console-money.css")}

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.startswith(("ch_", "py_")):
            return queryset.filter(charge_id=term), False
        if term.startswith(("du_", "dp_")):
            return queryset.filter(dispute_id=term), False
        found = selectors.order_search(term=term)
        orders = list(Order.objects.filter(found.query).values_list("pk", flat=True)[:1000])
        return queryset.filter(order_id__in=orders), False

    @admin.display(description="evidence due", ordering="respond_by")
    def due(self, row: OrderDispute) -> str:
        return due_badge(row)

    @admin.display(description="dispute")
    def dispute_link(self, row: OrderDispute) -> str:
        url = reverse("admin:orders_orderdispute_change", args=[row.pk])
        mirror = admin_link("dispute", row.dispute_id, "Stripe object")
        return format_html('<a href="{}">{}</a> <small>({})</small>', url, row.dispute_id, mirror)

    @admin.display(description="state")
    def state_text(self, row: OrderDispute) -> str:
        kind = "inquiry" if row.inquiry else "chargeback"
        return f"{kind}: {row.get_state_display()}"

    @admin.display(description="amount")
    def money(self, row: OrderDispute) -> str:
        return format_amount(row.amount, row.currency)

    @admin.display(description="withdrawn (not reinstated)")
    def funds(self, row: OrderDispute) -> str:
        return format_amount(row.funds_withdrawn, row.currency)

    @admin.display(description="reason")
    def reason_text(self, row: OrderDispute) -> str:
        return row.reason.replace("_", " ") or "-"

    @admin.display(description="order")
    def order_link(self, row: OrderDispute) -> str:
        if row.order_id is None:
            return format_html('<span class="console-warning">{}</span>', "no order's payment")
        url = admin_url("orders_order", row.order.public_id)
        return format_html('<a href="{}">{}</a>', url, row.order.number)

    @admin.display(description="charge")
    def charge_link(self, row: OrderDispute) -> str:
        return admin_link("charge", row.charge_id)

    @admin.display(description="Stripe Dashboard")
    def dashboard(self, row: OrderDispute) -> str:
        return dispute_dashboard(row)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(
                {
                    "dispute": obj,
                    "dashboard_url": dashboard_url("dispute", obj.dispute_id),
                    "can_note": request.user.has_perm(disputes.NOTE_DISPUTE),
                    "note_url": reverse("admin:orders_orderdispute_note", args=[obj.pk]),
                }
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/note/",
                self.admin_site.admin_view(self.note_view),
                name="orders_orderdispute_note",
            ),
            *super().get_urls(),
        ]

    def note_view(self, request, object_id):
        if not request.user.has_perm(disputes.NOTE_DISPUTE):
            raise PermissionDenied
        row = self.get_object(request, unquote(object_id))
        if row is None:
            raise Http404("No such dispute.")
        back = reverse("admin:orders_orderdispute_change", args=[row.pk])
        if request.method == "POST":
            disputes.dispute_note(
                actor=request.user, dispute_pk=row.pk, note=request.POST.get("note", "")[:5000]
            )
            messages.success(request, "Note saved (and kept in the audit log).")
        return HttpResponseRedirect(back)
