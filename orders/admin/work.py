"""What the shop adds to the console's own pages (``billing.admin``), registered, since billing
never imports the shop: its work on the front page (flagged payments, refunds to approve or
that failed, disputes to answer; each an indexed filter, counted capped) and its orders on a
customer's account page."""

from __future__ import annotations

from django.urls import reverse

from billing.admin import account, front
from billing.admin.base import order_link
from billing.display import when
from billing.money import format_amount
from billing.viewer import may_open
from orders import wording
from orders.models import Order, OrderDispute, OrderPayment, OrderRefund


def _list(model: str, query: str) -> str:
    return f"{reverse(f'admin:orders_{model}_changelist')}?{query}"


for _work in (
    front.Work(
        key="flagged_payments",
        label="flagged payments open",
        rows=lambda: OrderPayment.objects.exclude(flag="").filter(resolved_at=None),
        url=lambda: _list("orderpayment", "flagged=yes"),
        permission="orders.view_orderpayment",
        urgent=True,
    ),
    front.Work(
        key="refunds_requested",
        label="refunds awaiting approval",
        rows=lambda: OrderRefund.objects.filter(status=OrderRefund.Status.REQUESTED),
        url=lambda: _list("orderrefund", "status__exact=requested"),
        permission="orders.view_orderrefund",
        urgent=True,
    ),
    front.Work(
        key="refunds_failed",
        label="failed refunds open",
        rows=lambda: OrderRefund.objects.filter(flagged=True, resolved_at=None),
        url=lambda: _list("orderrefund", "attention=yes"),
        permission="orders.view_orderrefund",
        urgent=True,
    ),
    front.Work(
        key="disputes_open",
        label="disputes needing a response",
        rows=lambda: OrderDispute.objects.filter(state=OrderDispute.State.NEEDS_RESPONSE),
        url=lambda: _list("orderdispute", "due=open"),
        permission="orders.view_orderdispute",
        urgent=True,
    ),
):
    front.work_register(_work)


def customer_orders(customer) -> account.Section | None:
    """The customer's orders: its user's (one index: user, created), else those naming it."""
    if not may_open("orders_order"):
        return None
    if customer.subscriber_id:
        orders = Order.objects.filter(user_id=customer.subscriber_id)
    else:
        orders = Order.objects.filter(customer_id=customer.id)
    found = list(
        orders.order_by("-created_at", "-id").only(
            "public_id",
            "status",
            "amount_total",
            "currency",
            "created_at",
            "disputed",
            "checkout_session_id",
            "payment_intent_id",
        )[: account.ACCOUNT_ROWS + 1]
    )
    return account.Section(
        key="orders",
        title="Orders",
        columns=("order", "status", "total", "created"),
        rows=[
            (
                order_link(order.public_id),
                wording.status_label(order.status)
                + (f" ({order.get_disputed_display()})" if order.disputed else ""),
                format_amount(order.amount_total, order.currency),
                when(order.created_at),
            )
            for order in found[: account.ACCOUNT_ROWS]
        ],
        more=len(found) > account.ACCOUNT_ROWS,
        all_url=_list("order", f"q={customer.id}"),
        # their sessions' and payment intents' events join the page's history
        stripe_ids=[
            stripe_id
            for order in found[: account.ACCOUNT_ROWS]
            for stripe_id in (order.checkout_session_id, order.payment_intent_id)
            if stripe_id
        ],
    )


account.section_register(customer_orders, position=10)
