"""The order-paid mail: the customer's receipt from the shop, with their downloads.

Stripe mails its own receipt only when the account asks it to, and it cannot carry the shop's
download links; this one is sent once the order is paid (``state.order_paid`` queues it on
commit) by the worker, so neither the webhook nor the return page waits on the mail server.
Each digital item comes with a signed link that works for ``SHOP_DOWNLOAD_LINK_MAX_AGE`` and
only for the order's owner, signed in (``orders.downloads``); the order page makes fresh ones.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from config import celery
from orders import downloads
from orders.accounts import site_url
from orders.models import Order

logger = logging.getLogger(__name__)

TASK = "orders.order_paid_mail"


def order_paid_mail_queue(*, order: Order) -> None:
    """Have the worker mail the receipt once this transaction commits (call under the order's
    lock, as the order is paid: once per order)."""
    order_id = order.pk

    def publish() -> None:
        try:
            celery.task(TASK).delay(order_id)
        except Exception:
            # The broker is down: the order stands; the customer's page has the same links.
            logger.exception("could not queue the receipt mail of order %s", order_id)

    transaction.on_commit(publish)


def _link_lifetime() -> str:
    seconds = settings.SHOP_DOWNLOAD_LINK_MAX_AGE
    if seconds >= 86400:
        days = seconds // 86400
        return f"{days} day{'s' if days != 1 else ''}"
    hours = max(1, seconds // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}"


def order_paid_mail(*, order_id: int) -> bool:
    """Mail the customer their receipt: what they bought, and their downloads' links."""
    order = Order.objects.select_related("user").filter(pk=order_id).first()
    if order is None:
        return False
    to = order.email or order.user.email
    if not to:
        logger.warning("receipt of order %s not sent: no email address", order.public_id)
        return False
    deliveries = downloads.order_deliveries(order=order)
    context = {
        "order": order,
        "items": order.items.all(),
        "deliveries": [{"delivery": d, "url": site_url(d.url)} for d in deliveries if d.available],
        "order_url": site_url(reverse("orders:detail", args=[order.public_id])),
        "link_lifetime": _link_lifetime(),
        "shop_name": settings.SHOP_NAME,
    }
    send_mail(
        subject=f"Your order {order.number} at {settings.SHOP_NAME}",
        message=render_to_string("orders/email/order_paid.txt", context),
        from_email=None,
        recipient_list=[to],
    )
    return True
