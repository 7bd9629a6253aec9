"""`manage.py stripe_webhooks list | sync | upgrade | retire` against the emulator, with real
deliveries to the live server where events matter."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from djstripe.models import WebhookEndpoint

from billing import stripe_api
from billing.models import InboundEvent, WebhookDelivery
from billing.webhooks import registry
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
OLD_VERSION = "2025-02-24.acacia"


def run(*args: str, stdin: str | None = None, monkeypatch=None) -> str:
    out = io.StringIO()
    if stdin is not None:
        monkeypatch.setattr("builtins.input", lambda prompt: stdin)
    call_command("stripe_webhooks", *args, stdout=out)
    return out.getvalue()


def stripe_endpoint(endpoint_id: str) -> dict:
    return stripe_api.as_dict(
        stripe_api.retrieve(object_type="webhook_endpoint", stripe_id=endpoint_id)
    )


def make_customers(count: int) -> None:
    for n in range(count):
        stripe_api.create(object_type="customer", params={"email": f"c{n}@example.com"})


@pytest.fixture
def site(settings, live_server, stripe_emulator):
    settings.SITE_URL = live_server.url
    return live_server.url


# --- sync ----------------------------------------------------------------------------------


def test_sync_creates_the_endpoint_then_changes_nothing(site, stripe_emulator, settings):
    # when sync runs on a deployment without an endpoint
    output = run("sync", "--base-url", site)
    # then one endpoint exists at the pinned version, subscribed to exactly the handled types
    (row,) = WebhookEndpoint.objects.all()
    assert f"Created {row.id} (webhook endpoint at {settings.STRIPE_API_VERSION})" in output
    remote = stripe_endpoint(row.id)
    assert remote["api_version"] == settings.STRIPE_API_VERSION
    assert sorted(remote["enabled_events"]) == registry.subscribed_event_types()
    assert remote["url"] == f"{site}/stripe/webhook/{row.djstripe_uuid}/"
    # and its secret is stored locally, never printed nor kept in the mirrored JSON
    assert row.secret.startswith("whsec_")
    assert row.secret not in output and "secret" not in row.stripe_data
    # when it runs again, nothing is written to Stripe and nothing changes
    stripe_emulator.reset_stats()
    output = run("sync", "--base-url", site)
    assert f"{row.id} is up to date" in output
    by_route = stripe_emulator.stats()["by_route"]
    assert [route for route in by_route if not route.startswith("GET ")] == []
    assert WebhookEndpoint.objects.count() == 1


def test_sync_restores_types_and_status_changed_in_stripe(site):
    run("sync", "--base-url", site)
    row = WebhookEndpoint.objects.get()
    # given someone narrowed the endpoint to one type and disabled it in the Dashboard
    stripe_api.update(
        object_type="webhook_endpoint",
        stripe_id=row.id,
        params={"enabled_events": ["customer.created", "charge.dispute.created"], "disabled": True},
    )
    # when sync runs
    output = run("sync", "--base-url", site)
    # then Stripe and the mirror are back to the handled types, enabled
    assert f"Updated {row.id} (disabled, enabled_events)" in output
    remote = stripe_endpoint(row.id)
    assert sorted(remote["enabled_events"]) == registry.subscribed_event_types()
    assert remote["status"] == "enabled"
    row.refresh_from_db()
    assert row.status == "enabled" and sorted(row.enabled_events) == sorted(
        remote["enabled_events"]
    )
    assert row.secret.startswith("whsec_")  # an update's answer has no secret: the old one stays


def test_sync_refuses_to_replace_an_endpoint_at_another_version(site):
    from billing.webhooks.endpoints import webhook_endpoint_create

    old = webhook_endpoint_create(base_url=site, api_version=OLD_VERSION)
    with pytest.raises(CommandError, match=r"stripe_webhooks upgrade --to 2026-08-26\.dahlia"):
        run("sync", "--base-url", site)
    assert list(WebhookEndpoint.objects.values_list("id", flat=True)) == [old.id]


def test_sync_refuses_a_base_url_that_is_not_a_url(site):
    with pytest.raises(CommandError, match="not an http"):
        run("sync", "--base-url", "shop.example.com")
    assert WebhookEndpoint.objects.count() == 0


# --- list ----------------------------------------------------------------------------------


def test_list_shows_stripe_and_local_endpoints_with_what_they_received(site, stripe_emulator):
    run("sync", "--base-url", site)
    ours = WebhookEndpoint.objects.get()
    # an endpoint someone made in the Dashboard: in Stripe, not local, all types, old version
    foreign = stripe_api.create(
        object_type="webhook_endpoint",
        params={
            "url": "https://elsewhere.example.com/hook",
            "enabled_events": ["*"],
            "api_version": OLD_VERSION,
        },
    )
    make_customers(3)
    assert stripe_emulator.wait_deliveries(15)
    wait_for(lambda: InboundEvent.objects.count() == 3)

    output = run("list")

    ours_block = output.split(ours.id, 1)[1].split("\nwe_", 1)[0]
    assert "enabled  [in Stripe, local]" in ours_block
    assert f"url:      {ours.url}" in ours_block
    handled = registry.subscribed_event_types()
    assert f"types:    {len(handled)}: {handled[0]}, {handled[1]}" in ours_block
    assert "events received in the last 24 h: 3" in ours_block
    foreign_block = output.split(foreign.id, 1)[1].split("\nwe_", 1)[0]
    assert "NOT LOCAL" in foreign_block
    assert f"{OLD_VERSION}  (differs from pinned)" in foreign_block
    assert "EXTRA:    *" in foreign_block
    assert "events received in the last 24 h: 0" in foreign_block


# --- upgrade -------------------------------------------------------------------------------


def test_upgrade_adds_a_second_endpoint_and_each_event_is_stored_once(
    site, stripe_emulator, settings
):
    from billing.webhooks.endpoints import webhook_endpoint_create

    old = webhook_endpoint_create(base_url=site, api_version=OLD_VERSION)
    # when the operator upgrades to the pinned version
    output = run("upgrade", "--to", settings.STRIPE_API_VERSION)
    new = WebhookEndpoint.objects.exclude(pk=old.pk).get()
    assert f"Created {new.id} (webhook endpoint at {settings.STRIPE_API_VERSION})" in output
    assert new.url.startswith(f"{site}/stripe/webhook/")
    # then both endpoints deliver every event, and each event is stored and processed once
    make_customers(4)
    assert stripe_emulator.wait_deliveries(15)
    wait_for(lambda: WebhookDelivery.objects.filter(event__isnull=False).count() == 8)
    assert InboundEvent.objects.count() == 4
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {"processed"}
    outcomes = sorted(WebhookDelivery.objects.values_list("outcome", flat=True))
    assert outcomes == ["accepted"] * 4 + ["duplicate"] * 4
    # and each event was stored with the version of whichever endpoint brought it first
    assert set(InboundEvent.objects.values_list("api_version", flat=True)) <= {
        OLD_VERSION,
        settings.STRIPE_API_VERSION,
    }
    # running it again creates nothing and shows what each endpoint received
    output = run("upgrade", "--to", settings.STRIPE_API_VERSION)
    assert (
        f"{new.id} (webhook endpoint at {settings.STRIPE_API_VERSION}) already delivers" in output
    )
    assert (
        f"{old.id}  {OLD_VERSION}" in output and "received 4 change(s), 0 that no other" in output
    )
    assert f"retire the old: stripe_webhooks retire {old.id}" in output
    assert WebhookEndpoint.objects.count() == 2


def test_upgrade_refuses_a_version_that_is_not_one(site):
    with pytest.raises(CommandError, match="not a Stripe API version"):
        run("upgrade", "--to", "latest")
    assert WebhookEndpoint.objects.count() == 0


# --- retire --------------------------------------------------------------------------------


def test_retire_disables_then_deletes_after_confirmation(site, stripe_emulator, monkeypatch):
    from billing.webhooks.endpoints import webhook_endpoint_create

    old = webhook_endpoint_create(base_url=site, api_version=OLD_VERSION)
    run("upgrade", "--to", "2026-08-26.dahlia")
    # when the operator answers no at the prompt, the endpoint is left disabled
    output = run("retire", old.id, stdin="n", monkeypatch=monkeypatch)
    assert "Left" in output and stripe_endpoint(old.id)["status"] == "disabled"
    # when they run it again and confirm, it is deleted in Stripe and refused locally
    output = run("retire", old.id, stdin="y", monkeypatch=monkeypatch)
    assert f"Deleted {old.id}." in output
    with pytest.raises(stripe_api.StripeNotFound):
        stripe_endpoint(old.id)
    old.refresh_from_db()
    assert old.status == "disabled" and old.stripe_data.get("deleted") is True
    # and events keep arriving through the successor, once each
    make_customers(2)
    assert stripe_emulator.wait_deliveries(15)
    wait_for(lambda: InboundEvent.objects.count() == 2)
    assert WebhookDelivery.objects.filter(endpoint=old).count() == 0


def test_retire_refuses_the_last_endpoint_unless_told(site):
    run("sync", "--base-url", site)
    only = WebhookEndpoint.objects.get()
    with pytest.raises(CommandError, match="last enabled endpoint"):
        run("retire", only.id, "--yes")
    assert stripe_endpoint(only.id)["status"] == "enabled"
    run("retire", only.id, "--yes", "--last")
    with pytest.raises(stripe_api.StripeNotFound):
        stripe_endpoint(only.id)


def test_retire_refuses_while_stripe_holds_events_nothing_else_brought(site, stripe_emulator):
    # given an endpoint whose receiver is down: Stripe keeps its events pending
    run("sync", "--base-url", site)
    broken = stripe_api.create(
        object_type="webhook_endpoint",
        params={
            "url": "http://127.0.0.1:9/stripe/webhook/gone/",
            "enabled_events": ["customer.created"],
        },
    )
    # the events were created before any other endpoint of ours took customer.created... by
    # narrowing ours, so only the broken endpoint is subscribed to them
    ours = WebhookEndpoint.objects.get()
    stripe_api.update(
        object_type="webhook_endpoint",
        stripe_id=ours.id,
        params={"enabled_events": ["customer.updated"]},
    )
    make_customers(2)
    assert stripe_emulator.wait_deliveries(15)
    pending = [
        e.id
        for e in stripe_api.list_all(
            object_type="event", params={"delivery_success": False, "type": "customer.created"}
        )
    ]
    assert len(pending) == 2
    # when the operator retires it, it is refused, naming the events, and nothing changes
    with pytest.raises(CommandError) as refused:
        run("retire", broken.id, "--yes", "--last")
    assert "2 event(s) are still pending delivery" in str(refused.value)
    assert all(event_id in str(refused.value) for event_id in pending)
    assert stripe_endpoint(broken.id)["status"] == "enabled"
    # once the events reach this deployment another way (resent to our endpoint), it retires
    stripe_api.update(
        object_type="webhook_endpoint",
        stripe_id=ours.id,
        params={"enabled_events": registry.subscribed_event_types()},
    )
    for event_id in pending:
        stripe_emulator.resend(event_id, endpoint=ours.id)
    assert stripe_emulator.wait_deliveries(15)
    wait_for(lambda: InboundEvent.objects.filter(id__in=pending).count() == 2)
    output = run("retire", broken.id, "--yes", "--last")
    assert f"Deleted {broken.id}." in output


def test_retire_of_an_unknown_endpoint_says_so(site):
    with pytest.raises(CommandError, match="No webhook endpoint we_nope"):
        run("retire", "we_nope", "--yes")


# --- rotate-secret -------------------------------------------------------------------------


def test_rotate_secret_reads_stdin_and_keeps_the_old_secret_for_the_overlap(
    webhook_endpoint, deliver_event, monkeypatch
):
    old_secret = webhook_endpoint.secret
    new_secret = "whsec_rolledInTheDashboard0123456789"
    monkeypatch.setattr("sys.stdin", io.StringIO(new_secret + "\n"))
    output = run("rotate-secret", webhook_endpoint.id, "--overlap-hours", "2")
    assert "accepted for 2 more hour(s)" in output and "whsec_" not in output
    webhook_endpoint.refresh_from_db()
    assert webhook_endpoint.secret == new_secret
    # deliveries signed with either secret verify during the overlap
    stripe_api.create(object_type="customer", params={"email": "rot@example.com"})
    event = stripe_api.as_dict(next(iter(stripe_api.list_all(object_type="event"))))
    assert deliver_event(event, secret=new_secret).status_code == 200
    assert deliver_event(event, secret=old_secret).status_code == 200
    assert deliver_event(event, secret="whsec_someoneElse").status_code == 400


def test_rotate_secret_refuses_what_is_not_a_signing_secret(webhook_endpoint, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("sk_test_oops\n"))
    with pytest.raises(CommandError, match="starts with whsec_"):
        run("rotate-secret", webhook_endpoint.id)
    secret = webhook_endpoint.secret
    webhook_endpoint.refresh_from_db()
    assert webhook_endpoint.secret == secret


# --- event destinations (thin events) ------------------------------------------------------


def test_thin_sync_list_ping_and_retire_an_event_destination(site, stripe_emulator, settings):
    from billing.models import EventDestination
    from billing.stripe_api import v2

    # Given a snapshot endpoint already delivering here
    run("sync", "--base-url", site)
    endpoint = WebhookEndpoint.objects.get()
    # when the deployment is set to thin events and sync runs
    settings.STRIPE_EVENT_PAYLOAD = "thin"
    output = run("sync", "--base-url", site)
    # then one thin destination exists, taking exactly the handled types (v1. names)
    destination = EventDestination.objects.get()
    assert f"Created {destination.id} (thin event destination)" in output
    assert f"Also pointing here: {endpoint.id}" in output
    remote = v2.destination_retrieve(destination_id=destination.id)
    assert remote["event_payload"] == "thin" and remote["type"] == "webhook_endpoint"
    wanted = [f"v1.{t}" for t in registry.subscribed_event_types()]
    assert sorted(remote["enabled_events"]) == wanted
    assert remote["webhook_endpoint"]["url"] == f"{site}/stripe/webhook/{destination.uuid}/"
    assert destination.secret.startswith("whsec_") and destination.secret not in output
    # and again: nothing written to Stripe
    stripe_emulator.reset_stats()
    assert f"{destination.id} is up to date" in run("sync", "--base-url", site)
    assert [r for r in stripe_emulator.stats()["by_route"] if not r.startswith("GET ")] == []

    # list shows both kinds, with their payload style and version
    make_customers(2)
    assert stripe_emulator.wait_deliveries(15)
    wait_for(lambda: InboundEvent.objects.count() == 4)  # each change both ways
    listed = run("list")
    assert "payload style (STRIPE_EVENT_PAYLOAD): thin" in listed
    thin_block = listed.split(destination.id, 1)[1].split("\nwe_", 1)[0]
    assert "kind:     event destination, thin events" in thin_block
    assert f"version:  unversioned (objects fetched at {settings.STRIPE_API_VERSION})" in thin_block
    assert f"types:    {len(wanted)}: {wanted[0]}" in thin_block
    snapshot_block = listed.split(endpoint.id, 1)[1].split("\ned_", 1)[0]
    assert "kind:     webhook endpoint, snapshot events" in snapshot_block
    assert f"version:  {settings.STRIPE_API_VERSION}" in snapshot_block

    # ping: a round trip through the live server, stored as a processed thin event
    pinged = run("ping", destination.id)
    assert "Round trip:" in pinged and "status processed" in pinged
    ping = InboundEvent.objects.get(type="v2.core.event_destination.ping")
    assert ping.payload_style == "thin" and ping.object_id == destination.id
    with pytest.raises(CommandError, match="event destinations only"):
        run("ping", endpoint.id)

    # retiring the snapshot endpoint leaves the destination delivering; then the destination
    # itself is refused as the last receiver unless told
    assert stripe_emulator.wait_deliveries(15)
    retired = run("retire", endpoint.id, "--yes")
    assert f"Events keep arriving through {destination.id} (thin event destination)" in retired
    with pytest.raises(CommandError, match="last enabled endpoint"):
        run("retire", destination.id, "--yes")
    assert v2.destination_retrieve(destination_id=destination.id)["status"] == "enabled"
