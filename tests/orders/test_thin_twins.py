"""One change, two payload styles: while the deployment has a snapshot webhook endpoint and a
thin event destination (an upgrade between them), Stripe sends the payment of an order twice,
as checkout.session.completed and as its thin twin v1.checkout.session.completed, under two
event ids. Whatever the order and however often each arrives, the change is applied once: one
fetch of the session, one mirror write, one handler run, the order paid once.

The deliveries are the emulator's own (bodies and signatures as sent), handed to the real
intake view in the order each test chooses; the last test sends them all at once, many times,
to the live server with real Celery workers (PostgreSQL in CI).
"""

from __future__ import annotations

import threading
import urllib.request

import pytest

from billing.models import InboundEvent, ObjectSync
from billing.webhooks.destinations import event_destination_create
from billing.webhooks.endpoints import webhook_endpoint_create
from orders.models import Order, OrderPayment
from orders.services import order_checkout_start
from tests.billing.thin_support import capture_fixture, deliver, route_calls  # noqa: F401
from tests.conftest import events_final, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

GET_SESSION = "GET /v1/checkout/sessions/{id}"


@pytest.fixture
def both_receivers(stripe_emulator, capture):
    """This deployment mid-upgrade: a snapshot endpoint and a thin destination, both live."""
    return (
        webhook_endpoint_create(base_url=capture.base_url),
        event_destination_create(base_url=capture.base_url),
    )


@pytest.fixture
def paid(stripe_emulator, capture, both_receivers, customer, catalog):
    """An order paid on Checkout; the two deliveries of its payment, as Stripe sent them."""
    step = order_checkout_start(
        user=customer, price_id=catalog["usd"], quantity=1, request_token="twins"
    )
    session_id = step.order.checkout_session_id
    stripe_emulator.complete_checkout(session_id)
    snapshot = capture.wait_for(
        event_type="checkout.session.completed", thin=False, object_id=session_id
    )[0]
    thin = capture.wait_for(
        event_type="checkout.session.completed", thin=True, object_id=session_id
    )[0]
    stripe_emulator.reset_stats()
    writes = ObjectSync.objects.get(stripe_id=session_id).fetch_count  # checkout wrote it
    return step.order, session_id, {"snapshot": snapshot, "thin": thin, "writes": writes}


def assert_applied_once(
    stripe_emulator, order: Order, session_id: str, deliveries: dict, *, fetches: int = 1
) -> None:
    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLED
    assert list(order.history.values_list("to_status", flat=True)).count(Order.Status.PAID) == 1
    assert OrderPayment.objects.filter(order=order).count() == 1
    # one fetch and one write of the session, whichever event made it (twins processed at the
    # same instant may both fetch before either applies; one writes)
    assert 1 <= route_calls(stripe_emulator, GET_SESSION) <= fetches
    writes = ObjectSync.objects.get(stripe_id=session_id).fetch_count
    assert writes == deliveries["writes"] + 1
    ids = {kind: deliveries[kind]["payload"]["id"] for kind in ("snapshot", "thin")}
    statuses = dict(InboundEvent.objects.filter(id__in=ids.values()).values_list("id", "status"))
    assert sorted(statuses.values()) == ["duplicate", "processed"], statuses
    # the thin one knows its twin
    assert InboundEvent.objects.get(pk=ids["thin"]).snapshot_event == ids["snapshot"]


@pytest.mark.parametrize(
    "sequence",
    [
        ["snapshot", "thin"],
        ["thin", "snapshot"],
        ["snapshot", "snapshot", "thin", "thin"],
        ["thin", "snapshot", "thin", "snapshot", "thin"],
    ],
    ids=["snapshot-first", "thin-first", "each-twice", "interleaved"],
)
def test_a_change_delivered_both_ways_in_any_order_is_applied_once(
    client, stripe_emulator, paid, sequence
):
    order, session_id, deliveries = paid

    answers = [deliver(client, deliveries[kind]).status_code for kind in sequence]

    assert answers == [200] * len(sequence)
    assert_applied_once(stripe_emulator, order, session_id, deliveries)
    first, second = sequence[0], "thin" if sequence[0] == "snapshot" else "snapshot"
    applied = InboundEvent.objects.get(pk=deliveries[first]["payload"]["id"])
    assert applied.status == "processed"
    duplicate = InboundEvent.objects.get(pk=deliveries[second]["payload"]["id"])
    assert duplicate.status == "duplicate" and applied.id in duplicate.outcome


def _post(url: str, request: dict) -> int:
    sent = urllib.request.Request(
        url + request["path"],
        data=request["body"],
        headers={"Content-Type": "application/json", "Stripe-Signature": request["signature"]},
        method="POST",
    )
    with urllib.request.urlopen(sent, timeout=30) as response:
        return response.status


@pytest.mark.worker
def test_twins_arriving_at_once_many_times_with_real_workers_are_applied_once(
    stripe_emulator, paid, live_server, celery_workers
):
    order, session_id, deliveries = paid
    celery_workers.start(concurrency=4)
    # When each twin arrives ten times, all at the same instant
    copies = [deliveries["snapshot"], deliveries["thin"]] * 10
    start = threading.Barrier(len(copies))
    answers: list[int] = []

    def send(request: dict) -> None:
        start.wait()
        answers.append(_post(live_server.url, request))

    threads = [threading.Thread(target=send, args=(r,)) for r in copies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    # Then every copy is acknowledged and the change is applied once
    assert answers == [200] * len(copies)
    wait_for(events_final(2), timeout=60)
    assert_applied_once(stripe_emulator, order, session_id, deliveries, fetches=2)
