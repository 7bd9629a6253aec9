"""The ``order_id`` metadata link key: how the support console finds and names an order."""

from __future__ import annotations

from typing import Any

from billing.display import admin_url
from billing.metadata import LinkResolver, link_register
from orders.models import Order
from orders.money import format_amount
from orders.selectors import order_search


def _find(values: list[str]) -> dict[str, Any]:
    return {o.public_id: o for o in Order.objects.filter(public_id__in=values)}


def _label(order: Order) -> str:
    total = format_amount(order.amount_total, order.currency)
    return f"order {order.public_id} ({order.get_status_display()}, {total}, {order.email or 'no email'})"


def _admin_url(order: Order) -> str:
    return admin_url("orders_order", order.public_id)


def _tied_to(stripe_id: str) -> list[Order]:
    found = order_search(term=stripe_id)
    return list(Order.objects.filter(found)[:5]) if found is not None else []


def register() -> None:
    link_register(
        "order_id",
        LinkResolver(
            noun="order", find=_find, label=_label, admin_url=_admin_url, tied_to=_tied_to
        ),
    )
