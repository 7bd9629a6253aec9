"""The Event history's "Fetch missed events": one object's events that Stripe lists but never
reached us are stored and processed by the normal pipeline, once; who may press it."""

from __future__ import annotations

import html

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import quote
from django.urls import reverse
from djstripe.models import Customer

from billing import mirror, stripe_api
from billing.models import AuditEntry, InboundEvent

pytestmark = pytest.mark.django_db(transaction=True)


def fetch_url(customer_id: str) -> str:
    return reverse("admin:djstripe_customer_fetch_events", args=[quote(customer_id)])


def page_url(customer_id: str) -> str:
    return reverse("admin:djstripe_customer_change", args=[quote(customer_id)])


@pytest.fixture
def customer_with_missed_events(stripe_emulator) -> str:
    """A customer mirrored by a resync, whose two events never arrived (no webhook ran)."""
    created = stripe_api.create(object_type="customer", params={"email": "missed@example.com"})
    stripe_api.update(object_type="customer", stripe_id=created.id, params={"name": "Before"})
    mirror.object_sync(object_type="customer", stripe_id=created.id)
    return created.id


def test_support_fetches_missed_events_once(staff, customer_with_missed_events):
    customer_id = customer_with_missed_events
    client = staff.client("support")
    page = client.get(page_url(customer_id))
    assert page.status_code == 200
    assert "Fetch missed events" in page.content.decode()
    assert "No events stored for this object." in page.content.decode()
    # Stripe changed the customer since the mirror's copy; the missed update event brings it
    stripe_api.update(object_type="customer", stripe_id=customer_id, params={"name": "After"})

    response = client.post(fetch_url(customer_id), follow=True)

    text = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert "3 missed events fetched and queued for processing (0 already received)." in text
    stored = InboundEvent.objects.filter(object_id=customer_id)
    assert stored.count() == 3
    assert set(stored.values_list("status", flat=True)) == {InboundEvent.Status.PROCESSED}
    assert Customer.objects.get(id=customer_id).stripe_data["name"] == "After"
    # the history now lists them, on the page the button sent us back to
    assert text.count('id="event-evt_') == 3

    # audited on the object's page and in Django's admin log
    entry = AuditEntry.objects.get(stripe_id=customer_id)
    assert (entry.action, entry.result, entry.actor) == ("fetch_events", "done", staff.support)
    assert "3 missed (stored and queued)" in entry.message
    assert LogEntry.objects.filter(
        object_repr=customer_id, change_message__startswith="Fetched missed events"
    ).exists()

    again = client.post(fetch_url(customer_id), follow=True)

    assert "No missed events: all 3 that Stripe lists were received already." in (
        html.unescape(again.content.decode())
    )
    assert InboundEvent.objects.filter(object_id=customer_id).count() == 3


def test_fetching_needs_the_resync_permission(staff, customer_with_missed_events):
    customer_id = customer_with_missed_events

    assert staff.client("nobody").post(fetch_url(customer_id)).status_code == 403
    assert staff.client("nobody").get(page_url(customer_id)).status_code == 403
    assert InboundEvent.objects.count() == 0
    # the button is where the permission is
    assert (
        "Fetch missed events" in staff.client("billing").get(page_url(customer_id)).content.decode()
    )


def test_stripe_down_is_a_message_not_an_error(staff, customer_with_missed_events, stripe_emulator):
    customer_id = customer_with_missed_events
    stripe_emulator.set_faults(error_rate=1.0)

    response = staff.client("support").post(fetch_url(customer_id), follow=True)

    assert response.status_code == 200
    assert "Fetching events failed." in html.unescape(response.content.decode())
    assert InboundEvent.objects.count() == 0
    assert AuditEntry.objects.get(stripe_id=customer_id).result == "failed"
