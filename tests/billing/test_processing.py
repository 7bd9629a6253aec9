"""Processing: latest state, once, in any order; failures kept and reprocessable."""

import itertools
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from djstripe.models import Customer, Invoice, Product, Subscription

from billing import mirror, stripe_api
from billing.mirror import locks
from billing.models import InboundEvent, ObjectSync, WebhookDelivery, WebhookSecret
from billing.webhooks import endpoints, processing, queue, registry
from billing.webhooks import intake as webhook_intake
from config.celery import app as celery_app

pytestmark = pytest.mark.django_db(transaction=True)


def emitted(*, types: list[str], object_id: str | None = None) -> list[dict]:
    """Events the emulator emitted, oldest first."""
    found = stripe_api.list_all(object_type="event", params={"types": types})
    events_ = [stripe_api.as_dict(e) for e in found]
    if object_id:
        events_ = [e for e in events_ if e["data"]["object"]["id"] == object_id]
    return list(reversed(events_))


def subscription_scenario() -> tuple[str, str, list[dict]]:
    """A subscription's realistic sequence: created, updated, invoice created, paid, updated."""
    customer = stripe_api.create(object_type="customer", params={"email": "sub@example.com"})
    price = stripe_api.create(
        object_type="price",
        params={"currency": "usd", "unit_amount": 900, "recurring": {"interval": "month"},
                "product_data": {"name": "Plan"}},
    )  # fmt: skip
    sub = stripe_api.create(
        object_type="subscription",
        params={"customer": customer.id, "items": [{"price": price.id}],
                "default_payment_method": "pm_card_visa"},
    )  # fmt: skip
    stripe_api.update(object_type="subscription", stripe_id=sub.id, params={"metadata": {"a": "1"}})
    stripe_api.update(
        object_type="subscription",
        stripe_id=sub.id,
        params={"metadata": {"b": "2"}, "cancel_at_period_end": True},
    )
    invoice_id = (
        sub.latest_invoice if isinstance(sub.latest_invoice, str) else sub.latest_invoice.id
    )
    sub_events = emitted(
        types=["customer.subscription.created", "customer.subscription.updated"], object_id=sub.id
    )
    invoice_events = emitted(types=["invoice.created", "invoice.paid"], object_id=invoice_id)
    sequence = [sub_events[0], sub_events[1], *invoice_events, sub_events[-1]]
    assert [e["type"] for e in sequence] == [
        "customer.subscription.created",
        "customer.subscription.updated",
        "invoice.created",
        "invoice.paid",
        "customer.subscription.updated",
    ]
    return sub.id, invoice_id, sequence


def assert_mirror_matches_emulator(subscription_id: str, invoice_id: str) -> None:
    latest_sub = stripe_api.retrieve(object_type="subscription", stripe_id=subscription_id)
    latest_invoice = stripe_api.retrieve(object_type="invoice", stripe_id=invoice_id)
    sub_row = Subscription.objects.get(id=subscription_id)
    invoice_row = Invoice.objects.get(id=invoice_id)
    for key in ("status", "metadata", "cancel_at_period_end", "items"):
        assert sub_row.stripe_data[key] == stripe_api.as_dict(latest_sub)[key], key
    for key in (
        "status",
        "amount_paid",
        "amount_due",
        "paid" if "paid" in latest_invoice else "id",
    ):
        assert invoice_row.stripe_data[key] == stripe_api.as_dict(latest_invoice)[key], key


def test_every_order_of_a_subscription_sequence_ends_at_the_latest_state(
    stripe_emulator, deliver_event
):
    subscription_id, invoice_id, sequence = subscription_scenario()
    orders = list(itertools.permutations(sequence))
    assert len(orders) == 120

    for order in orders:
        # Given a mirror that has seen none of these events
        InboundEvent.objects.all().delete()
        ObjectSync.objects.all().delete()
        Invoice.objects.filter(id=invoice_id).delete()
        Subscription.objects.filter(id=subscription_id).delete()

        for event in order:
            assert deliver_event(event).status_code == 200

        statuses = set(InboundEvent.objects.values_list("status", flat=True))
        errors = list(
            InboundEvent.objects.exclude(last_error="").values_list("last_error", flat=True)
        )
        assert statuses == {InboundEvent.Status.PROCESSED}, ([e["type"] for e in order], errors[:1])
        assert_mirror_matches_emulator(subscription_id, invoice_id)


def test_burst_of_events_for_one_object_costs_one_fetch(stripe_emulator, deliver_event):
    # Given ten updates of one customer, all delivered before any is processed
    customer = stripe_api.create(object_type="customer", params={"email": "burst@example.com"})
    for n in range(10):
        stripe_api.update(
            object_type="customer", stripe_id=customer.id, params={"metadata": {"n": str(n)}}
        )
    burst = emitted(types=["customer.updated"], object_id=customer.id)
    assert len(burst) == 10
    celery_app.conf.task_always_eager = False
    for event in burst:
        assert deliver_event(event).status_code == 200
    celery_app.conf.task_always_eager = True
    stripe_emulator.reset_stats()

    # When the worker processes them
    for event in burst:
        processing.process(event["id"])

    # Then one fetch served all ten, and the mirror holds the last state
    assert stripe_emulator.stats()["by_route"].get("GET /v1/customers/{id}") == 1
    assert ObjectSync.objects.get(stripe_id=customer.id).fetch_count == 1
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert Customer.objects.get(id=customer.id).metadata == {"n": "9"}


def test_an_event_received_after_the_last_fetch_is_fetched_again(stripe_emulator, deliver_event):
    customer = stripe_api.create(object_type="customer", params={"email": "late@example.com"})
    (created,) = emitted(types=["customer.created"], object_id=customer.id)
    deliver_event(created)
    stripe_api.update(object_type="customer", stripe_id=customer.id, params={"name": "Late"})
    (updated,) = emitted(types=["customer.updated"], object_id=customer.id)

    deliver_event(updated)

    assert ObjectSync.objects.get(stripe_id=customer.id).fetch_count == 2
    assert Customer.objects.get(id=customer.id).stripe_data["name"] == "Late"


def test_object_lock_serialises_work_on_one_object(stripe_emulator):
    """A write of an object waits for the transaction holding its lock to commit."""
    customer = stripe_api.create(object_type="customer", params={"email": "lock@example.com"})
    held = threading.Event()
    timings: dict[str, float] = {}

    def holder():
        with transaction.atomic():
            locks.take([customer.id])
            held.set()
            time.sleep(1.0)
            timings["released"] = time.monotonic()
        connection.close()

    def contender():
        held.wait(5)
        mirror.object_sync(object_type="customer", stripe_id=customer.id)
        timings["refreshed"] = time.monotonic()
        connection.close()

    threads = [threading.Thread(target=holder), threading.Thread(target=contender)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)

    assert timings["refreshed"] >= timings["released"]


def test_deleted_customer_is_marked_deleted_not_retried(stripe_emulator, deliver_event):
    customer = stripe_api.create(object_type="customer", params={"email": "gone@example.com"})
    deliver_event(emitted(types=["customer.created"], object_id=customer.id)[0])
    stripe_api.delete(object_type="customer", stripe_id=customer.id)
    (deleted,) = emitted(types=["customer.deleted"], object_id=customer.id)

    deliver_event(deleted)

    event = InboundEvent.objects.get(id=deleted["id"])
    assert event.status == InboundEvent.Status.PROCESSED
    assert "deleted" in event.outcome
    assert event.attempts == 1
    assert Customer.objects.get(id=customer.id).date_purged is not None
    assert ObjectSync.objects.get(stripe_id=customer.id).deleted_at is not None


def test_object_missing_in_stripe_is_marked_deleted(stripe_emulator, deliver_event):
    product = stripe_api.create(object_type="product", params={"name": "Short-lived"})
    deliver_event(emitted(types=["product.created"], object_id=product.id)[0])
    stripe_api.delete(object_type="product", stripe_id=product.id)
    (deleted,) = emitted(types=["product.deleted"], object_id=product.id)

    deliver_event(deleted)

    event = InboundEvent.objects.get(id=deleted["id"])
    assert event.status == InboundEvent.Status.PROCESSED, event.last_error
    assert Product.objects.get(id=product.id).stripe_data["deleted"] is True


@pytest.fixture
def failing_handler(monkeypatch, settings):
    settings.BILLING_EVENT_MAX_ATTEMPTS = 3
    settings.BILLING_EVENT_RETRY_BASE_SECONDS = 0.01
    state = {"fail": True, "calls": 0}

    def handler(ctx):
        state["calls"] += 1
        if state["fail"]:
            raise RuntimeError("boom: the handler is broken")
        return "handled"

    monkeypatch.setitem(registry.HANDLERS, "customer.created", handler)
    return state


def test_failures_keep_the_traceback_retry_then_mark_failed(
    stripe_emulator, deliver_event, failing_handler
):
    customer = stripe_api.create(object_type="customer", params={"email": "f@example.com"})
    (created,) = emitted(types=["customer.created"], object_id=customer.id)

    response = deliver_event(created)

    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert failing_handler["calls"] == 3
    assert event.status == InboundEvent.Status.FAILED
    assert event.attempts == 3
    assert "RuntimeError: boom" in event.last_error
    # the failed attempts' mirror writes were rolled back with them
    assert not Customer.objects.filter(id=customer.id).exists()


def test_failed_event_is_reprocessed_by_service_and_command(
    stripe_emulator, deliver_event, failing_handler
):
    customer = stripe_api.create(object_type="customer", params={"email": "r@example.com"})
    (created,) = emitted(types=["customer.created"], object_id=customer.id)
    deliver_event(created)
    assert InboundEvent.objects.get().status == InboundEvent.Status.FAILED

    # When the bug is fixed and an operator replays failed events
    failing_handler["fail"] = False
    call_command("stripe_process_events", "--failed", "--since", "1d", "--type", "customer.created")

    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.PROCESSED
    assert "handled" in event.outcome
    assert Customer.objects.filter(id=customer.id).exists()
    # reprocessing a processed event does nothing more
    queue.event_reprocess(event=event)
    assert failing_handler["calls"] == 4


def test_rate_limits_and_server_errors_are_retried_then_processed(
    stripe_emulator, deliver_event, settings
):
    settings.BILLING_EVENT_RETRY_BASE_SECONDS = 0.2
    customer = stripe_api.create(object_type="customer", params={"email": "429@example.com"})
    (created,) = emitted(types=["customer.created"], object_id=customer.id)
    stripe_emulator.reset_stats()
    # Given an API that answers 500 to everything for a second, and allows one request a second
    stripe_emulator.set_faults(rate_limit=1, error_rate=1.0)
    threading.Timer(1.0, lambda: stripe_emulator.set_faults(error_rate=0.0)).start()

    deliver_event(created)

    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.PROCESSED, event.last_error
    assert Customer.objects.filter(id=customer.id).exists()
    # the processing really met both on its way
    by_status = stripe_emulator.stats()["by_status"]
    assert by_status.get("500", 0) > 0
    assert by_status.get("429", 0) > 0


def test_prune_drops_old_deliveries_but_keeps_events(stripe_emulator, deliver_event):
    customer = stripe_api.create(object_type="customer", params={"email": "p@example.com"})
    deliver_event(emitted(types=["customer.created"], object_id=customer.id)[0])
    WebhookDelivery.objects.update(received_at=timezone.now() - timedelta(days=40))

    call_command("stripe_prune_deliveries", "--older-than", "30")

    assert not WebhookDelivery.objects.exists()
    assert InboundEvent.objects.get().status == InboundEvent.Status.PROCESSED


def test_secret_rotation_accepts_both_during_overlap_then_only_new(
    stripe_emulator, deliver_event, webhook_endpoint
):
    customer = stripe_api.create(object_type="customer", params={"email": "rot@example.com"})
    stripe_api.update(object_type="customer", stripe_id=customer.id, params={"name": "A"})
    stripe_api.update(object_type="customer", stripe_id=customer.id, params={"name": "B"})
    first, second, third = emitted(
        types=["customer.created", "customer.updated"], object_id=customer.id
    )
    old_secret = webhook_endpoint.secret
    new_secret = "whsec_rotated0123456789abcdef"

    endpoint = endpoints.webhook_secret_rotate(
        endpoint=webhook_endpoint, new_secret=new_secret, overlap=timedelta(hours=1)
    )

    # During the overlap both secrets verify
    assert deliver_event(first, endpoint=endpoint, secret=old_secret).status_code == 200
    assert deliver_event(second, endpoint=endpoint, secret=new_secret).status_code == 200
    # After it, only the new one
    endpoint_secrets = WebhookSecret.objects.filter(endpoint=endpoint)
    endpoint_secrets.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert deliver_event(third, endpoint=endpoint, secret=old_secret).status_code == 400
    assert deliver_event(third, endpoint=endpoint, secret=new_secret).status_code == 200
    assert InboundEvent.objects.count() == 3


@pytest.fixture
def stored_not_run():
    """Store events without running their task (it goes to a queue nobody consumes here)."""

    def store(event: dict) -> InboundEvent:
        celery_app.conf.task_always_eager = False
        try:
            webhook_intake.event_store(payload=event)
        finally:
            celery_app.conf.task_always_eager = True
        return InboundEvent.objects.get(pk=event["id"])

    return store


def test_a_run_for_an_event_waiting_for_its_retry_does_nothing(stripe_emulator, stored_not_run):
    customer = stripe_api.create(object_type="customer", params={"email": "w@example.com"})
    (created,) = emitted(types=["customer.created"], object_id=customer.id)
    event = stored_not_run(created)
    later = timezone.now() + timedelta(minutes=5)
    InboundEvent.objects.filter(pk=event.pk).update(
        status=InboundEvent.Status.RETRYING, attempts=1, next_attempt_at=later
    )
    stripe_emulator.reset_stats()

    outcome = processing.process(event.pk)

    assert outcome.startswith("skipped")
    event.refresh_from_db()
    assert (event.status, event.attempts, event.next_attempt_at) == ("retrying", 1, later)
    assert stripe_emulator.stats()["total"] == 0
    # and requeuing it (command, admin service) leaves it waiting too
    assert queue.events_requeue() == 0
    queue.event_reprocess(event=event)
    event.refresh_from_db()
    assert (event.status, event.next_attempt_at) == ("retrying", later)


def test_two_runs_for_one_event_at_once_one_works_the_other_exits(stripe_emulator, stored_not_run):
    customer = stripe_api.create(object_type="customer", params={"email": "two@example.com"})
    (created,) = emitted(types=["customer.created"], object_id=customer.id)
    event = stored_not_run(created)
    stripe_emulator.reset_stats()
    stripe_emulator.set_faults(latency=1.0)  # the first run is mid-fetch when the second comes
    start = threading.Barrier(2)
    outcomes = []

    def run():
        start.wait()
        try:
            outcomes.append(processing.process(event.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(o.split(":")[0] for o in outcomes) == ["processed", "skipped"]
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("processed", 1)
    assert stripe_emulator.stats()["by_route"]["GET /v1/customers/{id}"] == 1


def test_a_claim_past_its_lease_is_taken_over_and_the_late_holder_changes_nothing(
    stripe_emulator, stored_not_run, settings
):
    settings.BILLING_EVENT_LEASE_SECONDS = 60
    customer = stripe_api.create(object_type="customer", params={"email": "late@example.com"})
    (created,) = emitted(types=["customer.created"], object_id=customer.id)
    event = stored_not_run(created)
    # Given a claim taken 2 minutes ago by a worker that never finished
    old_claim = timezone.now() - timedelta(minutes=2)
    InboundEvent.objects.filter(pk=event.pk).update(
        status=InboundEvent.Status.PROCESSING, claimed_at=old_claim
    )

    # When another run takes it over, it processes the event, counting the lost attempt
    assert processing.process(event.pk) == InboundEvent.Status.PROCESSED
    event.refresh_from_db()
    assert event.attempts == 2
    assert "lease expired" in event.last_error
    # and a run within a live claim does nothing
    InboundEvent.objects.filter(pk=event.pk).update(
        status=InboundEvent.Status.PROCESSING, claimed_at=timezone.now()
    )
    assert processing.process(event.pk).startswith("skipped")
