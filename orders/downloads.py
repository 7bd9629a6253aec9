"""Digital goods: the file a product delivers, signed links to it, and each download counted.

A product declares its file in its Stripe metadata, ``download=<file name>`` (the catalog's
mirror is read; no Stripe call). The file lives in the "downloads" storage (``STORAGES``; by
default ``SHOP_DOWNLOADS_ROOT``, a private folder outside the static files), never at a URL of
its own: it is streamed by ``download_open`` through a link that is

- signed (``django.core.signing``, salted for downloads) over the order item's id, so it cannot
  be guessed or pointed at another item;
- expiring (``SHOP_DOWNLOAD_LINK_MAX_AGE``; the order page makes fresh ones at each view);
- for the order's owner only (anyone else signed in is refused; a visitor is asked to sign in);
- revoked when the order is refunded in full, or cancelled (checked at each download, so a
  mailed link stops working the moment the refund is recorded).
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.files.storage import storages
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from orders.delivery import ItemDownload
from orders.models import Order, OrderItem

logger = logging.getLogger(__name__)

S = Order.Status
DOWNLOAD_KEY = "download"  # the product metadata key naming its file
SALT = "orders.download"
# The order's states in which its files may be downloaded.
DELIVERABLE = frozenset({S.PAID, S.FULFILLED, S.PARTIALLY_REFUNDED})

REFUSED_OTHER = "This download belongs to another account. Sign in as the customer who bought it."
REFUSED_REFUNDED = "This order was refunded in full, so its download is no longer available."
REFUSED_UNPAID = "The download is available once the order is paid."
REFUSED_CANCELED = "This order was cancelled, so its download is not available."
EXPIRED = "This download link has expired. Open your order to get a fresh one."
MISSING = "This file is not available right now. Please try again later or contact us."
NOT_FOUND = "This download link is not valid."


def storage():
    return storages["downloads"]


def product_file(product_data: dict[str, Any] | None) -> str | None:
    """The file a product delivers (its metadata ``download``), or None. A name only: one with
    a folder, or pointing upwards, is not served."""
    name = (((product_data or {}).get("metadata")) or {}).get(DOWNLOAD_KEY, "").strip()
    if not name or name != posixpath.basename(name) or name in (".", ".."):
        if name:
            logger.error("product download %r is not a plain file name; not served", name)
        return None
    return name


def item_file(item: OrderItem) -> str | None:
    return product_file(item.price.product.stripe_data)


def link_token(item: OrderItem) -> str:
    return signing.dumps(item.pk, salt=SALT, compress=False)


def link_path(item: OrderItem) -> str:
    return reverse("orders:download", args=[link_token(item)])


@dataclass(frozen=True)
class Delivery:
    """One downloadable item of an order, as its page and its mail show it."""

    item: OrderItem
    file_name: str
    url: str  # the path; the mail makes it absolute
    count: int
    available: bool
    why_not: str


def order_deliveries(*, order: Order) -> list[Delivery]:
    """The order's items that deliver a file, each with a fresh link while the order may be
    downloaded (two queries: its items with their products, their counters)."""
    items = OrderItem.objects.filter(order=order).select_related("price__product")
    counts = dict(ItemDownload.objects.filter(item__order=order).values_list("item_id", "count"))
    available, why_not = _deliverable(order)
    found = []
    for item in items:
        name = item_file(item)
        if name is None:
            continue
        url = link_path(item) if available else ""
        found.append(Delivery(item, name, url, counts.get(item.pk, 0), available, why_not))
    return found


def _deliverable(order: Order) -> tuple[bool, str]:
    if order.status in DELIVERABLE:
        return True, ""
    if order.status == S.REFUNDED:
        return False, REFUSED_REFUNDED
    if order.status == S.CANCELED:
        return False, REFUSED_CANCELED
    return False, REFUSED_UNPAID


class DownloadRefused(Exception):
    """The link may not be served: ``status`` (404, 403, 410) and a plain ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Opened:
    file: IO[bytes]
    file_name: str


def download_open(*, token: str, user: AbstractBaseUser) -> Opened:
    """Check a download link for ``user`` and open its file from storage, counting the
    download. Raises ``DownloadRefused`` saying why not."""
    try:
        item_id = signing.loads(token, salt=SALT, max_age=settings.SHOP_DOWNLOAD_LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise DownloadRefused(410, EXPIRED) from None
    except signing.BadSignature:
        raise DownloadRefused(404, NOT_FOUND) from None
    item = OrderItem.objects.select_related("order", "price__product").filter(pk=item_id).first()
    if item is None:
        raise DownloadRefused(404, NOT_FOUND)
    if item.order.user_id != user.pk:
        logger.warning(
            "download of item %s (order %s) refused to user %s: not the owner",
            item.pk,
            item.order.public_id,
            user.pk,
        )
        raise DownloadRefused(403, REFUSED_OTHER)
    available, why_not = _deliverable(item.order)
    if not available:
        raise DownloadRefused(410 if item.order.status == S.REFUNDED else 403, why_not)
    name = item_file(item)
    if name is None:
        raise DownloadRefused(404, NOT_FOUND)
    try:
        opened = storage().open(name, "rb")
    except FileNotFoundError:
        logger.error("download %s of order %s is not in storage", name, item.order.public_id)
        raise DownloadRefused(404, MISSING) from None
    _count(item)
    return Opened(file=opened, file_name=name)


def _count(item: OrderItem) -> None:
    """One more download of the item, counted in the database (concurrent downloads add up)."""
    now = timezone.now()
    with transaction.atomic():
        counter, _ = ItemDownload.objects.get_or_create(item=item, defaults={"first_at": now})
        ItemDownload.objects.filter(pk=counter.pk).update(count=F("count") + 1, last_at=now)
