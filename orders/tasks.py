"""Celery tasks of the shop. Tasks are thin: they call one service and report."""

from celery import shared_task

from orders import receipts
from orders.login import links


@shared_task(name="orders.login_link_send")
def login_link_send(user_id: int | None, next_url: str) -> bool:
    """Mail a one-time sign-in link (``orders.login.links``); None: a refusal with a wrong
    password, published all the same so refusals all take the same time."""
    return links.link_mail(user_id=user_id, next_url=next_url)


@shared_task(name="orders.order_paid_mail")
def order_paid_mail(order_id: int) -> bool:
    """Mail the customer their receipt with their downloads (``orders.receipts``)."""
    return receipts.order_paid_mail(order_id=order_id)
