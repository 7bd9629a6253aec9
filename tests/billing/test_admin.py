"""Admin pages for the inbox: they load, stay cheap as rows grow, and gate reprocessing."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.utils import timezone

from billing.models import InboundEvent, ObjectSync, WebhookDelivery

ADMIN = f"/{settings.ADMIN_URL}"


def make_event(n: int, status=InboundEvent.Status.FAILED, **extra) -> InboundEvent:
    event = InboundEvent.objects.create(
        id=f"evt_admin_{n}",
        type="customer.updated",
        created=datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=n),
        object_type="customer",
        object_id=f"cus_{n}",
        payload={"id": f"evt_admin_{n}", "object": "event"},
        status=status,
        last_error="Traceback (most recent call last):\nRuntimeError: boom"
        if status == "failed"
        else "",
        **extra,
    )
    WebhookDelivery.objects.create(
        event=event,
        endpoint_uuid="00000000-0000-0000-0000-000000000001",
        outcome=WebhookDelivery.Outcome.ACCEPTED,
        status_code=200,
        body=b"{}",
    )
    ObjectSync.objects.create(stripe_id=f"cus_{n}", object_type="customer")
    return event


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model", ["inboundevent", "webhookdelivery", "objectsync"], ids=lambda m: m
)
def test_changelists_load_with_bounded_queries(admin_client, django_assert_max_num_queries, model):
    for n in range(3):
        make_event(n)
    with django_assert_max_num_queries(12):
        small = admin_client.get(f"{ADMIN}billing/{model}/")
    for n in range(3, 40):
        make_event(n)
    with django_assert_max_num_queries(12):
        large = admin_client.get(f"{ADMIN}billing/{model}/")

    assert small.status_code == large.status_code == 200


@pytest.mark.django_db
def test_event_page_shows_error_and_deliveries(admin_client):
    event = make_event(1)

    response = admin_client.get(f"{ADMIN}billing/inboundevent/{event.pk}/change/")

    assert response.status_code == 200
    assert b"RuntimeError: boom" in response.content
    assert b"accepted (new event)" in response.content


@pytest.mark.django_db
def test_delivery_and_sync_pages_load(admin_client):
    event = make_event(1)
    delivery = event.deliveries.get()

    assert (
        admin_client.get(f"{ADMIN}billing/webhookdelivery/{delivery.pk}/change/").status_code == 200
    )
    assert admin_client.get(f"{ADMIN}billing/objectsync/cus_1/change/").status_code == 200


@pytest.fixture
def staff(client):
    user = User.objects.create_user("support", password="pw-support-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_inboundevent"))
    client.force_login(user)
    return user


def post_reprocess(client, *events):
    return client.post(
        f"{ADMIN}billing/inboundevent/",
        {"action": "reprocess", "_selected_action": [e.pk for e in events]},
    )


@pytest.mark.django_db
def test_reprocess_action_needs_the_permission(client, staff):
    event = make_event(1)

    response = post_reprocess(client, event)

    # the action is not offered, so nothing happens
    assert response.status_code == 200
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.FAILED
    page = client.get(f"{ADMIN}billing/inboundevent/")
    assert b"Reprocess the selected events" not in page.content


@pytest.mark.django_db
def test_reprocess_action_with_permission_requeues(
    client, staff, django_capture_on_commit_callbacks
):
    staff.user_permissions.add(Permission.objects.get(codename="reprocess_inboundevent"))
    event = make_event(1)
    processed = make_event(2, status=InboundEvent.Status.PROCESSED)

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = post_reprocess(client, event, processed)

    assert response.status_code == 302
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.PENDING
    # one task queued: the processed event is left alone
    assert len(queued) == 1


@pytest.mark.django_db
def test_process_events_pending_requeues_only_stale_ones(django_capture_on_commit_callbacks):
    stale = make_event(1, status=InboundEvent.Status.PENDING)
    InboundEvent.objects.filter(pk=stale.pk).update(received_at=timezone.now() - timedelta(hours=1))
    make_event(2, status=InboundEvent.Status.PENDING)
    make_event(3, status=InboundEvent.Status.FAILED)

    with django_capture_on_commit_callbacks(execute=False) as queued:
        call_command("stripe_process_events", "--pending", "--stale-minutes", "10")

    assert len(queued) == 1
