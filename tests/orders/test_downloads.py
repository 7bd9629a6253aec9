"""Fulfilment that delivers: a digital product's file, bought through the real checkout and
paid on the emulator's Checkout, is downloaded by its owner through a signed, expiring link (on
the order page and in the receipt mail), streamed from the downloads storage, counted; anyone
else is refused, and a full refund (made through Stripe's API, its events delivered signed
through the real intake) revokes it."""

from __future__ import annotations

import re
import time

import pytest
from django.core import mail, signing
from django.test import Client

from billing import stripe_api
from orders import downloads
from orders.delivery import ItemDownload
from orders.demo_files import demo_file
from orders.models import Order
from tests.admin.conftest import deliver_all_events
from tests.orders.helpers import bought

S = Order.Status
pytestmark = pytest.mark.django_db(transaction=True)
EBOOK = "field-guide-to-stripe-webhooks.pdf"


def paid(client, price: str, emulator) -> Order:
    """Bought, paid on Checkout, confirmed by the return page."""
    order = bought(client, price)
    emulator.complete_checkout(order.checkout_session_id)
    client.get(f"/orders/{order.public_id}/return/?session_id={order.checkout_session_id}")
    order.refresh_from_db()
    assert order.status == S.FULFILLED
    return order


def links(page: str) -> list[str]:
    return re.findall(r'href="(/downloads/[^"]+/)"', page)


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_the_owner_downloads_a_bought_ebook_counted(
    client, customer, catalog, stripe_emulator, download_files
):
    client.force_login(customer)
    order = paid(client, catalog["usd"], stripe_emulator)
    # the order page offers the file
    page = client.get(f"/orders/{order.public_id}/").content.decode()
    assert "<h2>Downloads</h2>" in page and EBOOK in page
    (link,) = links(page)
    # when the owner opens the link, the file is streamed from storage as an attachment
    response = client.get(link)
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{EBOOK}"'
    assert response["Content-Type"] == "application/pdf"
    assert "no-store" in response["Cache-Control"]
    assert body(response) == (download_files / EBOOK).read_bytes() == demo_file(EBOOK)
    # and each download is counted
    item = order.items.get()
    assert ItemDownload.objects.get(item=item).count == 1
    assert body(client.get(link)) == demo_file(EBOOK)
    assert ItemDownload.objects.get(item=item).count == 2
    page = client.get(f"/orders/{order.public_id}/").content.decode()
    assert 'downloaded <span class="download-count">2</span> times' in page


def test_the_receipt_mail_carries_the_download(
    client, customer, catalog, stripe_emulator, download_files, settings
):
    client.force_login(customer)
    order = paid(client, catalog["eur"], stripe_emulator)
    # then the customer is mailed once, with a link to their file and their order
    (sent,) = [m for m in mail.outbox if m.to == [customer.email]]
    assert sent.subject == f"Your order {order.number} at {settings.SHOP_NAME}"
    assert "1 x Sticker pack (download): €3.50" in sent.body
    assert "sticker-pack.zip" in sent.body and "for 7 days, for you only" in sent.body
    (link,) = re.findall(rf"{re.escape(settings.SITE_URL)}(/downloads/\S+/)", sent.body)
    assert f"{settings.SITE_URL}/orders/{order.public_id}/" in sent.body
    response = client.get(link)
    assert response.status_code == 200 and body(response) == demo_file("sticker-pack.zip")
    # a subscription's receipt has no download
    mail.outbox.clear()
    paid(client, catalog["monthly"], stripe_emulator)
    (sent,) = mail.outbox
    assert "/downloads/" not in sent.body and "Pro membership" in sent.body


def test_another_customer_and_a_visitor_are_refused(
    client, customer, make_user, catalog, stripe_emulator, download_files
):
    client.force_login(customer)
    order = paid(client, catalog["usd"], stripe_emulator)
    (link,) = links(client.get(f"/orders/{order.public_id}/").content.decode())
    # another customer opening the owner's link
    other = Client()
    other.force_login(make_user())
    response = other.get(link)
    assert response.status_code == 403
    assert downloads.REFUSED_OTHER in response.content.decode()
    assert "Content-Disposition" not in response
    # a visitor is asked to sign in first
    response = Client().get(link)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    # a link pointing at another item, or altered, is no link at all
    token = link.split("/")[2]
    item_id = order.items.get().pk
    payload = signing.b64_encode(str(item_id + 1).encode()).decode()
    forged = link.replace(token, payload + token[token.index(":") :])
    assert forged != link and client.get(forged).status_code == 404
    assert client.get(link[:-3] + "xx/").status_code == 404
    assert not ItemDownload.objects.exists()


def test_a_link_expires(client, customer, catalog, stripe_emulator, download_files, settings):
    client.force_login(customer)
    order = paid(client, catalog["usd"], stripe_emulator)
    (link,) = links(client.get(f"/orders/{order.public_id}/").content.decode())
    settings.SHOP_DOWNLOAD_LINK_MAX_AGE = 1
    time.sleep(2.1)
    response = client.get(link)
    assert response.status_code == 410
    assert downloads.EXPIRED in response.content.decode()
    # the order page makes a fresh one
    (fresh,) = links(client.get(f"/orders/{order.public_id}/").content.decode())
    assert client.get(fresh).status_code == 200


def test_a_full_refund_revokes_the_download(
    client, customer, catalog, stripe_emulator, download_files, deliver_event
):
    client.force_login(customer)
    order = paid(client, catalog["usd"], stripe_emulator)
    (link,) = links(client.get(f"/orders/{order.public_id}/").content.decode())
    deliver_all_events(deliver_event)
    # a partial refund leaves the download
    stripe_api.create(
        object_type="refund", params={"payment_intent": order.payment_intent_id, "amount": 500}
    )
    deliver_all_events(deliver_event)
    order.refresh_from_db()
    assert order.status == S.PARTIALLY_REFUNDED
    assert client.get(link).status_code == 200
    # when the rest is refunded in Stripe and its events reach the shop
    stripe_api.create(object_type="refund", params={"payment_intent": order.payment_intent_id})
    deliver_all_events(deliver_event)
    order.refresh_from_db()
    assert order.status == S.REFUNDED
    # then the link answers 410 with a plain message, and the page offers no download
    response = client.get(link)
    assert response.status_code == 410
    assert downloads.REFUSED_REFUNDED in response.content.decode()
    page = client.get(f"/orders/{order.public_id}/").content.decode()
    assert links(page) == [] and downloads.REFUSED_REFUNDED in page


def test_an_unpaid_order_offers_no_download(client, customer, catalog, download_files):
    client.force_login(customer)
    order = bought(client, catalog["jpy"])
    page = client.get(f"/orders/{order.public_id}/").content.decode()
    assert links(page) == [] and downloads.REFUSED_UNPAID in page
    token = downloads.link_token(order.items.get())
    response = client.get(f"/downloads/{token}/")
    assert response.status_code == 403 and downloads.REFUSED_UNPAID in response.content.decode()


def test_a_missing_file_says_so(client, customer, catalog, stripe_emulator, download_files):
    client.force_login(customer)
    order = paid(client, catalog["usd"], stripe_emulator)
    (download_files / EBOOK).unlink()
    (link,) = links(client.get(f"/orders/{order.public_id}/").content.decode())
    response = client.get(link)
    assert response.status_code == 404 and downloads.MISSING in response.content.decode()


@pytest.mark.parametrize(
    ("declared", "served"),
    [
        ("guide.pdf", "guide.pdf"),
        ("", None),
        ("../settings.py", None),
        ("sub/guide.pdf", None),
        ("..", None),
    ],
)
def test_only_a_plain_file_name_is_served(declared, served):
    assert downloads.product_file({"metadata": {"download": declared}}) == served
