"""The console with thin events: each event's payload style in the object's event history, the
thin notification as received beside the full event fetched for it, the event's own page, and
reprocess for both styles."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from billing import stripe_api
from billing.models import InboundEvent
from billing.webhooks.destinations import event_destination_create
from billing.webhooks.endpoints import webhook_endpoint_create
from tests.billing.thin_support import capture_fixture, deliver  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def twins(client, stripe_emulator, capture):
    """A customer created while the deployment has a snapshot endpoint and a thin destination:
    its creation delivered both ways, processed (the thin one paired with its twin)."""
    webhook_endpoint_create(base_url=capture.base_url)
    event_destination_create(base_url=capture.base_url)
    customer = stripe_api.create(object_type="customer", params={"email": "ada@example.com"})
    snapshot = capture.wait_for(event_type="customer.created", thin=False, object_id=customer.id)
    thin = capture.wait_for(event_type="customer.created", thin=True, object_id=customer.id)
    assert deliver(client, snapshot[0]).status_code == 200
    assert deliver(client, thin[0]).status_code == 200
    return (
        customer.id,
        InboundEvent.objects.get(pk=snapshot[0]["payload"]["id"]),
        InboundEvent.objects.get(pk=thin[0]["payload"]["id"]),
    )


def test_event_history_shows_each_events_payload_style_and_the_fetched_event(
    admin_client, twins, settings
):
    customer_id, snapshot, thin = twins
    assert (snapshot.status, thin.status) == ("processed", "duplicate")
    assert thin.fetched_event is not None and thin.snapshot_event == snapshot.id

    page = admin_client.get(reverse("admin:djstripe_customer_change", args=[quote(customer_id)]))

    assert page.status_code == 200
    html = page.content.decode()
    thin_row = html.split(f'id="event-{thin.id}"', 1)[1].split("</tr>", 1)[0]
    assert ">thin</span>" in thin_row and "unversioned" in thin_row
    assert f"stands for <code>{snapshot.id}</code>" in thin_row
    assert "thin notification (as received)" in thin_row
    assert "fetched event" in thin_row
    assert "v1.customer.created" in thin_row  # the notification's own type name
    assert "snapshot_event" in thin_row  # the fetched v2 event's field
    snapshot_row = html.split(f'id="event-{snapshot.id}"', 1)[1].split("</tr>", 1)[0]
    assert ">snapshot</span>" in snapshot_row and settings.STRIPE_API_VERSION in snapshot_row
    assert "fetched event" not in snapshot_row


def test_a_thin_events_own_page_and_the_list_filter(admin_client, twins):
    _, snapshot, thin = twins

    page = admin_client.get(reverse("admin:billing_inboundevent_change", args=[quote(thin.id)]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "Thin event: its full event, as fetched from Stripe" in html
    assert snapshot.id in html and "v1.customer.created" in html
    listed = admin_client.get(
        reverse("admin:billing_inboundevent_changelist") + "?payload_style=thin"
    )
    assert listed.status_code == 200
    assert thin.id in listed.content.decode() and snapshot.id not in listed.content.decode()


def test_reprocess_works_for_a_thin_event_and_a_snapshot_event(admin_client, twins):
    _, snapshot, thin = twins
    # given both stuck as failed (say, Stripe was down when they were processed)
    InboundEvent.objects.filter(pk__in=[snapshot.pk, thin.pk]).update(
        status=InboundEvent.Status.FAILED, outcome=""
    )

    answer = admin_client.post(
        reverse("admin:billing_inboundevent_changelist"),
        {"action": "reprocess", "_selected_action": [thin.pk, snapshot.pk]},
        follow=True,
    )

    # then both are processed again through the pipeline: the change applied by one of them,
    # the other found to be its twin
    assert answer.status_code == 200
    statuses = sorted(
        InboundEvent.objects.filter(pk__in=[snapshot.pk, thin.pk]).values_list("status", flat=True)
    )
    assert statuses == ["duplicate", "processed"]


def test_a_destination_is_pinged_from_the_console_with_its_round_trip(
    admin_client, stripe_emulator, settings, live_server
):
    from billing.models import EventDestination

    settings.SITE_URL = live_server.url
    destination = event_destination_create(base_url=live_server.url)
    changelist = reverse("admin:billing_eventdestination_changelist")
    assert destination.id in admin_client.get(changelist).content.decode()
    page = admin_client.get(
        reverse("admin:billing_eventdestination_change", args=[quote(destination.id)])
    )
    assert page.status_code == 200 and destination.secret not in page.content.decode()

    answer = admin_client.post(
        changelist, {"action": "ping", "_selected_action": [destination.pk]}, follow=True
    )

    said = [str(m) for m in answer.context["messages"]]
    assert any(f"{destination.id}: round trip" in m and "processed" in m for m in said), said
    ping = InboundEvent.objects.get(type="v2.core.event_destination.ping")
    assert ping.object_id == destination.id and ping.status == "processed"
    assert EventDestination.objects.get().status == "enabled"
