"""The admin's Stripe API versions page: versions, endpoints, events' versions, mismatches."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.utils import timezone

from billing.models import InboundEvent, WebhookDelivery
from billing.webhooks.endpoints import webhook_endpoint_create

pytestmark = pytest.mark.django_db
URL = f"/{settings.ADMIN_URL}billing/api-versions/"
OLD = "2025-02-24.acacia"


def received(version: str, days_ago: float, count: int) -> None:
    """``count`` events at ``version``, each delivered once ``days_ago``."""
    at = timezone.now() - timedelta(days=days_ago)
    for _ in range(count):
        n = InboundEvent.objects.count()
        event = InboundEvent.objects.create(
            id=f"evt_v{n}",
            type="customer.updated",
            api_version=version,
            created=at,
            received_at=at,
            payload={},
        )
        WebhookDelivery.objects.create(
            event=event, endpoint_uuid=uuid.uuid4(), received_at=at, outcome="accepted",
            status_code=200,
        )  # fmt: skip


def test_the_page_shows_versions_endpoints_and_what_arrived(admin_client, stripe_emulator):
    pinned = settings.STRIPE_API_VERSION
    current = webhook_endpoint_create(base_url="https://shop.example.com")
    old = webhook_endpoint_create(
        base_url="https://shop.example.com", api_version=OLD, enabled_events=["customer.created"]
    )
    received(pinned, 2, 3)
    received(OLD, 3, 2)
    received(OLD, 20, 4)
    received(OLD, 40, 9)  # older than 30 days: not counted

    page = admin_client.get(URL)

    assert page.status_code == 200
    html = page.content.decode()
    assert f'id="pinned-version">{pinned}<' in html
    assert "stripe-python (SDK)</td><td>2026-08-26.dahlia" in html
    assert "dj-stripe</td><td>2026-05-27.dahlia</td>" in html
    assert "same release line (additive changes only)" in html
    endpoints = html.split('id="endpoints"', 1)[1].split("</table>", 1)[0]
    assert current.id in endpoints and old.id in endpoints
    old_row = endpoints.split(old.id, 1)[1].split("</tr>", 1)[0]
    assert f"MISMATCH: pinned is {pinned}" in old_row
    assert "missing (handled but not subscribed)" in old_row
    current_row = endpoints.split(current.id, 1)[1].split("</tr>", 1)[0]
    assert "MISMATCH" not in current_row
    seen = html.split('id="versions-seen"', 1)[1].split("</table>", 1)[0]
    assert f"<td>{OLD}</td><td>2</td><td>6</td>" in seen
    assert f"<td>{pinned}</td><td>3</td><td>3</td>" in seen
    old_seen = seen.split(f"<td>{OLD}</td>", 1)[1].split("</tr>", 1)[0]
    assert "MISMATCH" in old_seen
    # no signing secret on the page
    assert current.secret not in html and "whsec_" not in html


def test_staff_need_the_permission(client, django_user_model, stripe_emulator):
    staff = django_user_model.objects.create_user(
        "support", "support@example.com", "a-long-password", is_staff=True
    )
    client.force_login(staff)
    assert client.get(URL).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_webhookendpoint"))
    client.force_login(django_user_model.objects.get(pk=staff.pk))
    assert client.get(URL).status_code == 200


def test_anonymous_visitors_are_sent_to_the_login(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_without_stripe_the_page_shows_the_mirror(admin_client, stripe_emulator, settings):
    endpoint = webhook_endpoint_create(base_url="https://shop.example.com")
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    page = admin_client.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Stripe could not be reached" in html and endpoint.id in html


def test_the_admin_index_links_the_page_for_those_who_may_see_it(admin_client, client):
    from django.contrib.auth import get_user_model

    index = f"/{settings.ADMIN_URL}"
    assert f'href="{URL}" id="api-versions-link"' in admin_client.get(index).content.decode()
    staff = get_user_model().objects.create_user("plain", password="x", is_staff=True)
    client.force_login(staff)
    assert "api-versions-link" not in client.get(index).content.decode()
