from django import template

from orders.money import format_amount

register = template.Library()


@register.filter
def money(amount: int | None, currency: str | None) -> str:
    """``{{ order.amount_total|money:order.currency }}``: the one way templates show amounts."""
    return format_amount(amount, currency)
