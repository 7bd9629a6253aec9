"""A move from a snapshot webhook endpoint to a thin event destination while events keep
coming: nothing lost, nothing applied twice, the old endpoint retired.

The emulator emits a steady stream of changes (customers created and updated over the API) and
delivers them, signed, to the live server, two seconds late. Mid-stream the operator runs
`stripe_webhooks upgrade --payload thin`; from then on each change arrives twice, as a snapshot
event and as its thin twin (two event ids). Retiring the endpoint at once is refused (it still
owes events nothing else will bring); once both have delivered for a while it goes through, and
the destination carries on alone.
"""

from __future__ import annotations

import contextlib
import time

import pytest
from django.core.management import CommandError, call_command

from billing import stripe_api
from billing.models import EventDestination, InboundEvent, WebhookDelivery
from billing.stripe_api import v2
from billing.webhooks import registry, thin
from billing.webhooks.endpoints import webhook_endpoint_create
from tests.billing.test_endpoint_upgrade_stream import DELAY, Stream, _Sink
from tests.conftest import wait_for


@pytest.mark.django_db(transaction=True)
def test_a_move_to_thin_events_during_a_stream_loses_nothing_and_applies_each_change_once(
    settings, live_server, stripe_emulator
):
    settings.SITE_URL = live_server.url
    started = int(time.time())
    # given this deployment's snapshot endpoint at the pinned version, deliveries two seconds
    # late, and every first attempt to it counted as failed by Stripe (it arrives, Stripe
    # retries it: pending in Stripe, yet stored here)
    old = webhook_endpoint_create(base_url=live_server.url)
    stripe_emulator.set_faults(delivery_delay=DELAY, endpoint_fail_first={old.id: 1})

    with Stream() as stream:
        time.sleep(2.0)  # the snapshot endpoint alone
        # when the operator moves to thin events
        call_command("stripe_webhooks", "upgrade", "--payload", "thin", stdout=_Sink())
        new = EventDestination.objects.get()
        assert new.event_payload == "thin" and new.status == "enabled"
        # then retiring the endpoint at once is refused: it owes the last events created before
        # the destination existed
        with pytest.raises(CommandError, match="still pending delivery") as refused:
            call_command("stripe_webhooks", "retire", old.id, "--yes", stdout=_Sink())
        assert stripe_api.retrieve(object_type="webhook_endpoint", stripe_id=old.id).status == (
            "enabled"
        )
        # both deliver for a while: changes that came both ways, paired
        paired = InboundEvent.objects.filter(payload_style="thin").exclude(snapshot_event="")
        wait_for(lambda: paired.count() >= 5, 30)
        # and the retire goes through once the endpoint owes nothing
        deadline = time.monotonic() + 60
        while True:
            try:
                call_command("stripe_webhooks", "retire", old.id, "--yes", stdout=_Sink())
                break
            except CommandError as exc:
                assert time.monotonic() < deadline, str(exc)
                time.sleep(0.2)
        time.sleep(2.0)  # the destination alone
    assert not stream.errors, stream.errors
    assert "Retiring it now would lose them" in str(refused.value)

    # then, once every delivery is done, every change Stripe made reached this deployment
    assert stripe_emulator.wait_deliveries(180)
    subscribed = set(registry.subscribed_event_types())
    emitted = {
        e.id
        for e in stripe_api.list_all(object_type="event", params={"created": {"gte": started}})
        if e.type in subscribed
    }
    assert len(emitted) > 40
    # the v1 event each thin event stands for, as Stripe's v2 events list tells it
    stands_for = {}
    for page in v2.event_pages(params={"created": {"gte": thin.iso(new.created)}, "limit": 100}):
        for event in page["data"]:
            stands_for[event["id"]] = event.get("snapshot_event") or ""
    with contextlib.suppress(AssertionError):  # the comparisons below say what is missing
        wait_for(
            lambda: not InboundEvent.objects.exclude(status__in=InboundEvent.FINAL).exists(), 20
        )
    rows = list(InboundEvent.objects.values("id", "payload_style", "status", "attempts"))
    change_of = {}
    for row in rows:
        if row["payload_style"] == "thin":
            change_of[row["id"]] = stands_for[row["id"]]
        else:
            change_of[row["id"]] = row["id"]
    assert set(change_of.values()) == emitted, (
        f"lost: {sorted(emitted - set(change_of.values()))[:5]}"
    )
    # and each change was applied once: one event processed, its twin (if any) a duplicate
    applied: dict[str, list[str]] = {}
    for row in rows:
        assert row["status"] in ("processed", "duplicate"), row
        assert row["attempts"] <= 1, row
        if row["status"] == "processed":
            applied.setdefault(change_of[row["id"]], []).append(row["id"])
    doubled = {change: ids for change, ids in applied.items() if len(ids) > 1}
    assert not doubled, doubled
    assert set(applied) == emitted
    assert not InboundEvent.objects.exclude(last_error="").exists()

    # the stream really overlapped: changes came as snapshots alone, both ways, and thin alone
    styles_of: dict[str, set[str]] = {}
    for row in rows:
        styles_of.setdefault(change_of[row["id"]], set()).add(row["payload_style"])
    assert any(s == {"snapshot"} for s in styles_of.values())
    assert any(s == {"snapshot", "thin"} for s in styles_of.values())
    assert any(s == {"thin"} for s in styles_of.values())
    assert InboundEvent.objects.filter(status="duplicate", payload_style="thin").exists() or (
        InboundEvent.objects.filter(status="duplicate", payload_style="snapshot").exists()
    )
    # and the old endpoint is gone from Stripe, the destination delivers on
    with pytest.raises(stripe_api.StripeNotFound):
        stripe_api.retrieve(object_type="webhook_endpoint", stripe_id=old.id)
    assert v2.destination_retrieve(destination_id=new.id)["status"] == "enabled"
    assert WebhookDelivery.objects.filter(endpoint_uuid=new.uuid).exists()
