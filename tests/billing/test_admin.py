"""Admin pages for the inbox: they load, stay cheap as rows grow, and gate reprocessing."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.utils import timezone

from billing.models import (
    InboundEvent,
    ObjectSync,
    WebhookDelivery,
    WebhookRejectCount,
    WebhookRejectSample,
)

ADMIN = f"/{settings.ADMIN_URL}"

# One minute for the whole module: "now" read at each call crossed a minute boundary between two
# calls once, and two counts fell on the same (endpoint, reason, minute)
MINUTE = timezone.now().replace(second=0, microsecond=0)


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
    )
    WebhookRejectCount.objects.create(
        endpoint_uuid="00000000-0000-0000-0000-000000000002",
        reason="bad_signature",
        status_code=400,
        minute=MINUTE - timedelta(minutes=n),
        count=n + 1,
    )
    WebhookRejectSample.objects.create(
        endpoint_uuid="00000000-0000-0000-0000-000000000002",
        reason="bad_signature",
        detail="signature: no signatures found",
        status_code=400,
        remote_ip="127.0.0.1",
    )
    ObjectSync.objects.create(stripe_id=f"cus_{n}", object_type="customer")
    return event


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model",
    ["inboundevent", "webhookdelivery", "objectsync", "webhookrejectcount", "webhookrejectsample"],
    ids=lambda m: m,
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
    count, sample = WebhookRejectCount.objects.get(), WebhookRejectSample.objects.get()
    for model, pk in (("webhookrejectcount", count.pk), ("webhookrejectsample", sample.pk)):
        page = admin_client.get(f"{ADMIN}billing/{model}/{pk}/change/")
        assert page.status_code == 200
        assert b"bad_signature" in page.content


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
def test_process_events_pending_requeues_only_lost_or_stuck_ones(
    django_capture_on_commit_callbacks, settings
):
    settings.BILLING_EVENT_LEASE_SECONDS = 120
    settings.BILLING_EVENT_REQUEUE_AFTER_SECONDS = 60
    now = timezone.now()
    old = now - timedelta(minutes=10)
    # queued 10 minutes ago and never run (a lost task): requeued
    lost = make_event(1, status=InboundEvent.Status.PENDING, queued_at=old)
    # its publish failed (broker down): requeued
    unpublished = make_event(2, status=InboundEvent.Status.PENDING, queued_at=None)
    # claimed by a worker 10 minutes ago, never finished (the worker died): requeued
    stuck = make_event(3, status=InboundEvent.Status.PROCESSING, claimed_at=old, queued_at=old)
    # retry due 10 minutes ago and not run: requeued
    due = make_event(4, status=InboundEvent.Status.RETRYING, next_attempt_at=old, queued_at=old)
    # left alone: just queued; claimed within the lease; waiting for its retry; final
    make_event(5, status=InboundEvent.Status.PENDING, queued_at=now)
    make_event(6, status=InboundEvent.Status.PROCESSING, claimed_at=now, queued_at=old)
    make_event(
        7,
        status=InboundEvent.Status.RETRYING,
        next_attempt_at=now + timedelta(minutes=5),
        queued_at=now + timedelta(minutes=5),
    )
    make_event(8, status=InboundEvent.Status.FAILED, queued_at=old)
    make_event(9, status=InboundEvent.Status.PROCESSED, queued_at=old)

    before = dict(InboundEvent.objects.values_list("pk", "queued_at"))

    with django_capture_on_commit_callbacks(execute=False) as queued:
        call_command("stripe_process_events", "--pending")

    assert len(queued) == 4
    after = dict(InboundEvent.objects.values_list("pk", "queued_at"))
    requeued = {pk for pk, queued_at in after.items() if queued_at != before[pk]}
    assert requeued == {e.pk for e in (lost, unpublished, stuck, due)}
    # a second run right after finds nothing to do: each was queued once
    with django_capture_on_commit_callbacks(execute=False) as again:
        call_command("stripe_process_events", "--pending")
    assert len(again) == 0


@pytest.mark.django_db
def test_reprocess_of_an_event_in_backoff_or_claimed_says_why_and_queues_nothing(
    client, staff, django_capture_on_commit_callbacks
):
    staff.user_permissions.add(Permission.objects.get(codename="reprocess_inboundevent"))
    later = timezone.now() + timedelta(minutes=5)
    waiting = make_event(1, status=InboundEvent.Status.RETRYING, attempts=2, next_attempt_at=later)
    claimed = make_event(2, status=InboundEvent.Status.PROCESSING, claimed_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = post_reprocess(client, waiting, claimed)

    assert len(queued) == 0
    page = client.get(response.url)
    assert b"waiting for its retry" in page.content
    assert b"attempt 3 of" in page.content
    assert b"a worker is processing it now" in page.content
    waiting.refresh_from_db()
    assert (waiting.status, waiting.next_attempt_at) == ("retrying", later)
