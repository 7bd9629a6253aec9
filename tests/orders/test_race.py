"""The return page and the webhook race to fulfil one order: it is fulfilled exactly once.

Real concurrency: two threads, each with its own database connection (PostgreSQL when
DATABASE_URL says so, the SQLite file otherwise), one running the return page through the
view, the other the signed webhook through the intake view and the event pipeline.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from billing.models import InboundEvent
from orders.models import Order
from tests.conftest import signed_body
from tests.orders.helpers import bought, stripe_list

S = Order.Status
ROUNDS = 4


def _run_together(*targets):
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def wrap(target):
        def run():
            try:
                barrier.wait(10)
                target()
            except BaseException as exc:  # reported to the test below
                errors.append(exc)
            finally:
                connection.close()

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a racer hung"
    return errors


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_return_page_and_webhook_fulfil_once(
    customer, catalog, stripe_emulator, webhook_endpoint, round_
):
    # given a paid session whose completion event has not been delivered yet
    buyer = Client()
    buyer.force_login(customer)
    order = bought(buyer, catalog["usd"])
    stripe_emulator.complete_checkout(order.checkout_session_id)
    event = next(
        e for e in stripe_list("event", type="checkout.session.completed")
        if e["data"]["object"]["id"] == order.checkout_session_id
    )  # fmt: skip
    body, header = signed_body(event, webhook_endpoint.secret)
    responses = {}

    def customer_returns():
        responses["page"] = buyer.get(
            f"/orders/{order.public_id}/return/?session_id={order.checkout_session_id}"
        )

    def stripe_delivers():
        responses["webhook"] = Client().post(
            f"/stripe/webhook/{webhook_endpoint.djstripe_uuid}/",
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=header,
        )

    # when both happen at the same moment
    errors = _run_together(customer_returns, stripe_delivers)

    # then neither failed, and the order was paid and fulfilled exactly once
    assert not errors, errors
    assert responses["page"].status_code == 200
    assert b"your payment is confirmed" in responses["page"].content
    assert responses["webhook"].status_code == 200
    order.refresh_from_db()
    assert order.status == S.FULFILLED
    assert order.history.filter(to_status=S.PAID).count() == 1
    assert order.history.filter(to_status=S.FULFILLED).count() == 1
    stored = InboundEvent.objects.get(id=event["id"])
    assert stored.status == InboundEvent.Status.PROCESSED, stored.last_error
