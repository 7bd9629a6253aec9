"""A plain, read-only Order admin so support can find an order (the full one comes later).

Status changes go through ``orders.services``; nothing here edits an order.
"""

from django.contrib import admin

from orders.models import Order, OrderHistory, OrderItem
from orders.money import format_amount


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fields = ("description", "price", "quantity", "unit_amount", "recurring_interval")
    readonly_fields = fields


class OrderHistoryInline(ReadOnlyInline):
    model = OrderHistory
    fields = ("at", "from_status", "to_status", "source", "event_id", "actor", "note")
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("public_id", "email", "status", "mode", "total", "created_at")
    list_filter = ("status", "mode")
    search_fields = ("public_id", "email", "user__email", "user__username")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    inlines = (OrderItemInline, OrderHistoryInline)
    fields = (
        "public_id", "user", "email", "status", "mode", "total", "refunded", "checkout_attempt",
        "stripe_ids", "checkout_session", "payment_intent", "customer", "subscription",
        "created_at", "paid_at", "fulfilled_at", "updated_at",
    )  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Stripe ids")
    def stripe_ids(self, obj: Order) -> str:
        ids = {
            "session": obj.checkout_session_id,
            "payment intent": obj.payment_intent_id,
            "customer": obj.customer_id,
            "subscription": obj.subscription_id,
        }
        return " · ".join(f"{name} {value}" for name, value in ids.items() if value) or "-"

    @admin.display(description="refunded")
    def refunded(self, obj: Order) -> str:
        return format_amount(obj.amount_refunded, obj.currency)

    @admin.display(description="total", ordering="amount_total")
    def total(self, obj: Order) -> str:
        return format_amount(obj.amount_total, obj.currency)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # View permission alone gives the read-only detail page.
        return False
