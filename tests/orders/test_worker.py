"""The business effect under real concurrency: one payment, twenty deliveries, one fulfilment."""

import pytest

from billing import stripe_api
from billing.models import InboundEvent
from orders.models import Order
from orders.services import order_checkout_start
from tests.conftest import deliver_concurrently, events_final, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_twenty_concurrent_deliveries_fulfil_the_order_once(
    stripe_emulator, catalog, customer, intake, celery_worker_process
):
    # Given an order paid on Checkout
    step = order_checkout_start(
        user=customer, price_id=catalog["usd"], quantity=1, request_token="twenty"
    )
    session_id = step.order.checkout_session_id
    stripe_emulator.complete_checkout(session_id)
    (completed,) = [
        stripe_api.as_dict(e)
        for e in stripe_api.list_all(
            object_type="event", params={"type": "checkout.session.completed"}
        )
        if e.data.object.id == session_id
    ]

    # When Stripe's checkout.session.completed arrives twenty times at once
    statuses = deliver_concurrently(intake, completed)

    # Then every delivery is acknowledged and the order is paid and fulfilled exactly once
    assert statuses == [200] * 20
    wait_for(events_final(1), timeout=60)
    assert InboundEvent.objects.get(id=completed["id"]).status == InboundEvent.Status.PROCESSED
    order = Order.objects.get(pk=step.order.pk)
    assert order.status == Order.Status.FULFILLED
    transitions = list(order.history.values_list("to_status", flat=True))
    assert transitions.count(Order.Status.PAID) == 1
    assert transitions.count(Order.Status.FULFILLED) == 1
