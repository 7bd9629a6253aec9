"""An API version upgrade of the webhook endpoint while events keep coming: none is lost, and
each is processed exactly once.

The emulator emits a steady stream of events (customers created and updated over the API) and
delivers them, signed, to the live server. Mid-stream the operator runs `stripe_webhooks
upgrade` (a second endpoint at the pinned version) and at once `stripe_webhooks retire` on the
old one, which is refused: deliveries lag behind, so the old endpoint still owes events that
nothing else will bring. Once both endpoints have delivered for a while, retire goes through.
"""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from django.core.management import CommandError, call_command
from djstripe.models import WebhookEndpoint

from billing import stripe_api
from billing.models import InboundEvent, WebhookDelivery
from billing.webhooks import registry
from billing.webhooks.endpoints import webhook_endpoint_create
from tests.conftest import wait_for

OLD_VERSION = "2025-02-24.acacia"  # before basil: the emulator renders these events differently
DELAY = 2.0  # seconds every delivery waits: the old endpoint always owes the last ones


class Stream:
    """Customers created and updated at a steady pace from a background thread (about ten
    events a second: each delivery is processed in its request, one at a time per endpoint)."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            try:
                customer = stripe_api.create(
                    object_type="customer", params={"email": f"stream{n}@example.com"}
                )
                stripe_api.update(
                    object_type="customer", stripe_id=customer.id, params={"name": f"Stream {n}"}
                )
            except Exception as exc:  # reported by the test
                self.errors.append(exc)
                return
            n += 1
            time.sleep(self.interval)

    def __enter__(self) -> Stream:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(30)


@pytest.mark.django_db(transaction=True)
def test_upgrade_and_retire_during_a_stream_lose_nothing_and_process_each_event_once(
    settings, live_server, stripe_emulator
):
    settings.SITE_URL = live_server.url
    pinned = settings.STRIPE_API_VERSION
    started = int(time.time())
    # given this deployment's endpoint at an old version, and deliveries that lag two seconds
    # behind, with every first attempt to the old endpoint counted as failed by Stripe (it
    # arrives, but Stripe retries it: pending in Stripe, yet stored here)
    old = webhook_endpoint_create(base_url=live_server.url, api_version=OLD_VERSION)
    stripe_emulator.set_faults(delivery_delay=DELAY, endpoint_fail_first={old.id: 1})

    with Stream() as stream:
        time.sleep(2.0)  # the old endpoint alone
        # when the operator upgrades
        call_command("stripe_webhooks", "upgrade", "--to", pinned, stdout=_Sink())
        new = WebhookEndpoint.objects.exclude(pk=old.pk).get()
        # then retiring the old one at once is refused: it still owes the last events created
        # before the new endpoint existed, which nothing else will bring
        with pytest.raises(CommandError, match="still pending delivery") as refused:
            call_command("stripe_webhooks", "retire", old.id, "--yes", stdout=_Sink())
        assert stripe_api.retrieve(object_type="webhook_endpoint", stripe_id=old.id).status == (
            "enabled"
        )
        # both endpoints deliver for a while (an event brought by both is stored once)
        both = (
            WebhookDelivery.objects.filter(endpoint=new, event__deliveries__endpoint=old)
            .values("event")
            .distinct()
        )
        wait_for(lambda: both.count() >= 5, 30)
        # and the retire goes through once the old endpoint owes nothing
        deadline = time.monotonic() + 60
        while True:
            try:
                call_command("stripe_webhooks", "retire", old.id, "--yes", stdout=_Sink())
                break
            except CommandError as exc:
                assert time.monotonic() < deadline, str(exc)
                time.sleep(0.2)
        time.sleep(2.0)  # the new endpoint alone
    assert not stream.errors, stream.errors

    # then, once every delivery is done, every event Stripe created is stored, exactly once
    assert stripe_emulator.wait_deliveries(180)
    subscribed = set(registry.subscribed_event_types())
    emitted = {
        e.id
        for e in stripe_api.list_all(object_type="event", params={"created": {"gte": started}})
        if e.type in subscribed
    }
    assert len(emitted) > 40
    final = InboundEvent.objects.filter(status__in=InboundEvent.FINAL)
    with contextlib.suppress(AssertionError):  # the comparison below says what is missing
        wait_for(lambda: final.count() >= len(emitted), 20)
    stored = set(InboundEvent.objects.values_list("id", flat=True))
    assert stored == emitted, f"lost: {sorted(emitted - stored)[:5]}"
    # and each was processed once: one successful attempt, no error, however many deliveries
    assert set(InboundEvent.objects.values_list("status", "attempts")) == {("processed", 1)}
    assert not InboundEvent.objects.exclude(last_error="").exists()

    assert "Retiring it now would lose them" in str(refused.value)
    # the stream really overlapped: events came through the old alone, both, and the new alone
    by_event: dict[str, set[int]] = {}
    for endpoint_pk, event_id in WebhookDelivery.objects.filter(event__isnull=False).values_list(
        "endpoint", "event"
    ):
        by_event.setdefault(event_id, set()).add(endpoint_pk)
    assert any(where == {old.pk} for where in by_event.values())
    assert any(where == {old.pk, new.pk} for where in by_event.values())
    assert any(where == {new.pk} for where in by_event.values())
    duplicates = WebhookDelivery.objects.filter(outcome=WebhookDelivery.Outcome.DUPLICATE)
    assert duplicates.exists()
    # and the old endpoint is gone from Stripe; events were stored at both versions
    with pytest.raises(stripe_api.StripeNotFound):
        stripe_api.retrieve(object_type="webhook_endpoint", stripe_id=old.id)
    assert set(InboundEvent.objects.values_list("api_version", flat=True)) == {OLD_VERSION, pinned}


class _Sink:
    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass
