"""stripe_replay_events and the one-object replay: only missed events, once, in the window."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from djstripe.models import Customer

from billing import stripe_api
from billing.models import InboundEvent, WebhookDelivery
from billing.operators import replay

pytestmark = pytest.mark.django_db(transaction=True)


def stripe_events(**params) -> list[dict]:
    return [stripe_api.as_dict(e) for e in stripe_api.list_all(object_type="event", params=params)]


def replay_command(*args: str) -> str:
    out = StringIO()
    call_command("stripe_replay_events", *args, stdout=out)
    return out.getvalue()


def test_replay_processes_only_missed_events_and_is_idempotent(
    stripe_emulator, deliver_event, settings
):
    # Given five customer events, two of which reached the webhook
    first = stripe_api.create(object_type="customer", params={"email": "a@example.com"})
    stripe_api.update(object_type="customer", stripe_id=first.id, params={"name": "A"})
    second = stripe_api.create(object_type="customer", params={"email": "b@example.com"})
    stripe_api.update(object_type="customer", stripe_id=second.id, params={"name": "B"})
    stripe_api.update(object_type="customer", stripe_id=second.id, params={"name": "B2"})
    emitted = stripe_events(type="customer.*")
    assert len(emitted) == 5
    delivered = [e for e in emitted if e["data"]["object"]["id"] == first.id]
    for event in delivered:
        assert deliver_event(event).status_code == 200
    assert InboundEvent.objects.count() == 2
    since = (timezone.now() - timedelta(hours=1)).isoformat()

    # When the missed events are replayed
    output = replay_command("--since", since)

    # Then the three missing ones are stored (as webhook intake stores them) and processed
    assert "3 never received" in output and "2 already received" in output
    assert InboundEvent.objects.count() == 5
    replayed = InboundEvent.objects.exclude(id__in=[e["id"] for e in delivered])
    assert {e.object_id for e in replayed} == {second.id}
    assert set(replayed.values_list("status", flat=True)) == {InboundEvent.Status.PROCESSED}
    assert Customer.objects.get(id=second.id).stripe_data["name"] == "B2"
    # no delivery is invented for them; the two delivered ones kept theirs
    assert WebhookDelivery.objects.count() == 2

    # And a second run changes nothing
    processed_at = dict(InboundEvent.objects.values_list("id", "processed_at"))
    output = replay_command("--since", since)
    assert "0 never received" in output and "5 already received" in output
    assert dict(InboundEvent.objects.values_list("id", "processed_at")) == processed_at


def test_default_types_are_listed_twenty_to_a_call(stripe_emulator):
    stripe_api.create(object_type="customer", params={"email": "c@example.com"})
    stripe_emulator.reset_stats()

    result = replay.events_replay(since=timezone.now() - timedelta(minutes=5))

    # 29 subscribed types: Stripe names at most 20 per list call, so two calls (the rest is
    # the stored event's processing, in process here: its object fetched)
    routes = stripe_emulator.stats()["by_route"]
    assert routes["GET /v1/events"] == 2
    assert routes["GET /v1/customers/{id}"] == 1
    assert result.stored == 1


def test_types_filter_what_is_replayed(stripe_emulator):
    customer = stripe_api.create(object_type="customer", params={"email": "t@example.com"})
    stripe_api.update(object_type="customer", stripe_id=customer.id, params={"name": "T"})

    replay_command("--since", timezone.now().date().isoformat(), "--types", "customer.updated")

    assert list(InboundEvent.objects.values_list("type", flat=True)) == ["customer.updated"]


def test_window_is_stripes_30_days(stripe_emulator):
    old = stripe_api.create(object_type="customer", params={"email": "old@example.com"})
    stripe_emulator.age_events(31)
    stripe_api.create(object_type="customer", params={"email": "new@example.com"})

    with pytest.raises(CommandError, match="last 30 days only"):
        replay_command("--since", (timezone.now() - timedelta(days=31)).isoformat())
    with pytest.raises(CommandError, match="not a date"):
        replay_command("--since", "yesterday-ish")
    with pytest.raises(CommandError, match="Not an event type"):
        replay_command("--since", timezone.now().date().isoformat(), "--types", "Customer")
    assert InboundEvent.objects.count() == 0

    replay_command("--since", (timezone.now() - timedelta(days=29)).isoformat())

    # the aged event is past Stripe's window: only the new customer's event comes back
    assert InboundEvent.objects.count() == 1
    assert InboundEvent.objects.get().object_id != old.id


def test_one_objects_missed_events(stripe_emulator):
    # Given two customers whose events never arrived
    wanted = stripe_api.create(object_type="customer", params={"email": "w@example.com"})
    stripe_api.update(object_type="customer", stripe_id=wanted.id, params={"name": "W"})
    other = stripe_api.create(object_type="customer", params={"email": "o@example.com"})

    result = replay.object_events_replay(object_type="customer", stripe_id=wanted.id)

    assert (result.stored, result.known) == (2, 0)
    assert set(InboundEvent.objects.values_list("object_id", flat=True)) == {wanted.id}
    assert Customer.objects.get(id=wanted.id).stripe_data["name"] == "W"
    assert not Customer.objects.filter(id=other.id).exists()
    # again: nothing new
    again = replay.object_events_replay(object_type="customer", stripe_id=wanted.id)
    assert (again.stored, again.known) == (0, 2)
    with pytest.raises(replay.ReplayError, match="No event types"):
        replay.object_events_replay(object_type="balance_transaction", stripe_id="txn_1")
