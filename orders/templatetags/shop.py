from django import template
from django.conf import settings

from billing.money import format_amount
from orders import wording

register = template.Library()


@register.filter
def money(amount: int | None, currency: str | None) -> str:
    """``{{ order.amount_total|money:order.currency }}``: the one way templates show amounts."""
    return format_amount(amount, currency)


@register.filter
def when(value, fmt: str = "") -> str:
    """``{{ order.created_at|when }}``: 12 Jan 2027, 14:05 CET, in the customer's time zone;
    ``|when:"date"`` for the date alone."""
    return wording.when(value, wording.DATE if fmt == "date" else wording.DATE_TIME)


@register.filter
def item_line(item) -> str:
    """An order item in the customer's words."""
    return wording.item_line(item)


@register.filter
def status_label(status: str) -> str:
    """An order status in the customer's words."""
    return wording.status_label(status)


@register.filter
def subscription_label(subscription) -> str:
    """A subscription's state (``selectors.SubscriptionSummary``) in the customer's words."""
    return wording.subscription_label(subscription.status, subscription.cancel_at_period_end)


@register.filter
def refund_line(refund) -> str:
    """A refund (``OrderRefund``) in the customer's words: "$5.00 refunded on 12 Jan 2027"."""
    return wording.refund_line(refund)


@register.simple_tag
def shop_name() -> str:
    return settings.SHOP_NAME
