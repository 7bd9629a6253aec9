"""No Stripe key or webhook signing secret, in full, anywhere a person or an operator can read:
every page (customer, anonymous and admin), every log line of a full flow (failures and their
tracebacks included), every email, and the endpoint command's output.

The flow: an endpoint registered with `stripe_webhooks sync`, a sign-up, a one-time purchase and
a subscription paid on Checkout with webhooks delivered to the live server, a refund, a
cancellation, a forged delivery, a Stripe outage while processing (retried), and a rotation of
the endpoint's signing secret.
"""

from __future__ import annotations

import io
import re

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.management import call_command
from django.test import Client
from djstripe.models import WebhookEndpoint

from billing import stripe_api
from billing.models import InboundEvent, WebhookSecret
from billing.webhooks import endpoints, queue
from tests.admin_pages import admin_urls
from tests.conftest import wait_for
from tests.orders.helpers import bought

pytestmark = pytest.mark.django_db(transaction=True)


def customer_pages(client: Client) -> dict[str, str]:
    from orders.models import Order

    pages = {}
    paths = ["/", "/orders/", "/accounts/password_change/"]
    for order in Order.objects.all():
        base = f"/orders/{order.public_id}/"
        paths += [base, f"{base}return/?session_id={order.checkout_session_id}", f"{base}cancel/"]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        pages[path] = response.content.decode()
    return pages


def anonymous_pages() -> dict[str, str]:
    client = Client()
    pages = {}
    for path in (
        "/",
        "/signup/",
        "/signup/sent/",
        "/accounts/login/",
        "/accounts/password_reset/",
        "/accounts/password_reset/done/",
        f"/{django_settings.ADMIN_URL}login/",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        pages[path] = response.content.decode()
    return pages


def test_no_key_or_webhook_secret_in_pages_logs_mail_or_command_output(
    catalog, stripe_emulator, live_server, admin_user, log_output, settings
):
    settings.SITE_URL = live_server.url
    command_output = io.StringIO()
    call_command("stripe_webhooks", "sync", "--base-url", live_server.url, stdout=command_output)

    # a customer signs up through the emailed link
    client = Client()
    client.post("/signup/", {"email": "flow@example.com"})
    link = re.search(r"https?://\S+", mail.outbox[-1].body).group(0)
    finish = "/" + link.split("/", 3)[3]
    client.post(
        finish, {"new_password1": "a-long-pass-phrase", "new_password2": "a-long-pass-phrase"}
    )
    # buys once and subscribes, paying on Checkout; webhooks reach the live server
    one_time = bought(client, catalog["usd"])
    stripe_emulator.complete_checkout(one_time.checkout_session_id)
    subscription = bought(client, catalog["monthly"])
    stripe_emulator.complete_checkout(subscription.checkout_session_id)
    assert stripe_emulator.wait_deliveries(30)
    one_time.refresh_from_db()
    stripe_api.create(object_type="refund", params={"payment_intent": one_time.payment_intent_id})
    client.post(f"/orders/{subscription.public_id}/subscription/cancel/")
    # a forged delivery is refused (and logged)
    endpoint = WebhookEndpoint.objects.get()
    forged = Client().post(
        f"/stripe/webhook/{endpoint.djstripe_uuid}/",
        data=b'{"id": "evt_forged", "object": "event"}',
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE="t=1,v1=00",
    )
    assert forged.status_code == 400
    # Stripe fails while an event is processed: the failure and its traceback are kept
    settings.BILLING_EVENT_MAX_ATTEMPTS = 2
    # without a broker a retry's wait is waited out in process, holding the delivery's request
    settings.BILLING_EVENT_RETRY_BASE_SECONDS = 0.2
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    stripe_emulator.set_faults(delivery_delay=0.5)
    outage = stripe_api.create(object_type="customer", params={"email": "outage@example.com"})
    stripe_emulator.set_faults(error_rate=1.0)
    failed = InboundEvent.objects.filter(object_id=outage.id, status="failed")
    wait_for(failed.exists, 30)
    stripe_emulator.clear_faults()
    assert "Traceback" in failed.get().last_error
    queue.event_reprocess(event=failed.get())
    # the signing secret is rotated
    endpoints.webhook_secret_rotate(
        endpoint=endpoint, new_secret="whsec_rotated0123456789abcdef", overlap=_hour()
    )
    call_command("stripe_webhooks", "list", stdout=command_output)
    wait_for(lambda: InboundEvent.objects.exclude(status="pending").count() >= 10)

    secrets = {settings.STRIPE_SECRET_KEY}
    secrets |= set(WebhookEndpoint.objects.exclude(secret="").values_list("secret", flat=True))
    secrets |= set(WebhookSecret.objects.values_list("secret", flat=True))
    assert len(secrets) == 3 and all(len(s) > 12 for s in secrets)

    staff = Client()
    staff.force_login(admin_user)
    readable = {
        **{f"customer {p}": html for p, html in customer_pages(client).items()},
        **{f"anonymous {p}": html for p, html in anonymous_pages().items()},
        **{
            f"admin {u}": staff.get(u).content.decode() for u in admin_urls(admin_user, objects=500)
        },
        **{f"mail to {m.to}": m.body for m in mail.outbox},
        "stripe_webhooks output": command_output.getvalue(),
    }
    lines = log_output.getvalue().splitlines()
    readable |= {f"log line {n}": line for n, line in enumerate(lines)}

    # the sweep read what it should: pages of each kind, and logs of the whole flow
    assert sum(k.startswith("admin ") for k in readable) > 10
    assert len(lines) > 20
    assert any("webhook delivery rejected" in line for line in lines)
    leaks = {where: s[:12] for where, text in readable.items() for s in secrets if s in text}
    assert leaks == {}


def _hour():
    from datetime import timedelta

    return timedelta(hours=1)
