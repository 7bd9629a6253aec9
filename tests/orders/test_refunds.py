"""Refunds as records, from Stripe's events: whatever the order the refund events arrive in and
however many times, each order ends with the same ``OrderRefund`` rows and the same status; a
refund that fails later is flagged for support and the order returns to its state before.

Orders are bought through the checkout service and paid on the emulator's Checkout; refunds are
made in Stripe (the emulator, over HTTP) as a Dashboard user would; every event is delivered,
signed, through the real intake and processed by the real handlers.
"""

from __future__ import annotations

import random

import pytest

from billing import stripe_api
from billing.models import InboundEvent
from orders.models import Order, OrderRefund
from tests.admin.conftest import buy, deliver_all_events, price_id

pytestmark = pytest.mark.django_db(transaction=True)
S = Order.Status
R = OrderRefund.Status
REFUND_EVENTS = ("charge.refunded", "charge.refund.updated", "refund.created", "refund.updated",
                 "refund.failed")  # fmt: skip


def events_since(marker: str | None) -> list[dict]:
    """The events the emulator emitted after ``marker`` (an event id), oldest first."""
    emitted = [stripe_api.as_dict(e) for e in stripe_api.list_all(object_type="event")]
    emitted.reverse()
    if marker is None:
        return emitted
    ids = [e["id"] for e in emitted]
    return emitted[ids.index(marker) + 1 :]


def last_event_id() -> str | None:
    events = stripe_api.list_all(object_type="event")
    first = next(iter(events), None)
    return first.id if first is not None else None


def records(order: Order) -> tuple:
    """What the shop made of the order's refunds: its status, its refunded amount and each
    refund's row (sorted by amount then status: ids differ from one round to the next)."""
    order.refresh_from_db()
    rows = sorted(
        (r.amount, r.currency, r.status, r.flagged, r.origin, bool(r.refund_id), r.payment_id
         == order.payments.get().pk)
        for r in order.refunds.all()
    )  # fmt: skip
    return order.status, order.amount_refunded, rows


def paid_orders(stripe_emulator, deliver_event, customer, count: int, card="4242424242424242"):
    orders = [
        buy(customer, price_id("usd"), card=card, emulator=stripe_emulator) for _ in range(count)
    ]
    deliver_all_events(deliver_event)
    for order in orders:
        order.refresh_from_db()
        assert order.status in (S.PAID, S.FULFILLED) and order.amount_total == 1900
    return orders


@pytest.fixture
def shopper(django_user_model):
    return django_user_model.objects.create_user(
        "refunds-shopper", email="refunds@example.com", password="a-long-test-password"
    )


@pytest.fixture
def shop(stripe_emulator, webhook_endpoint, catalog):
    return stripe_emulator


def refund(order: Order, amount: int | None = None) -> str:
    params = {"payment_intent": order.payment_intent_id}
    if amount is not None:
        params["amount"] = amount
    return stripe_api.create(object_type="refund", params=params).id


# Each round: three orders bought at once, then in Stripe one refunded in full, one refunded
# $5 then $3, one refunded $4 and the refund failed later (the card was closed); the refund
# events (and copies of them, as Stripe re-sends and re-emits) are delivered in the round's order.
ROUNDS = ["as emitted", "reversed", "shuffled 1", "shuffled 2"]


@pytest.mark.parametrize("round_", ROUNDS)
def test_refund_events_in_any_order_and_repeated_leave_the_same_records(
    round_, shop, deliver_event, shopper
):
    full, partial, failing = paid_orders(shop, deliver_event, shopper, 3)
    before = {o.pk: o.status for o in (full, partial, failing)}
    marker = last_event_id()
    refund(full)
    refund(partial, 500)
    refund(partial, 300)
    failed_id = refund(failing, 400)
    shop.fail_refund(failed_id, failure_reason="expired_or_canceled_card")
    events = [e for e in events_since(marker) if e["type"] in REFUND_EVENTS]
    assert {e["type"] for e in events} == set(REFUND_EVENTS)
    # given: the round's order, each event twice (a re-sent delivery, the same id) and once
    # more as a copy with its own id (Stripe emits refund.updated and charge.refunded again)
    if round_ == "reversed":
        events.reverse()
    elif round_.startswith("shuffled"):
        random.Random(round_).shuffle(events)
    copies = [{**e, "id": f"{e['id']}_copy"} for e in events]
    stream = events + events + copies
    random.Random(f"{round_}-dup").shuffle(stream)
    # when: every one is delivered through the intake
    for event in stream:
        assert deliver_event(event).status_code == 200
    # then: the same records, whatever the order
    assert not InboundEvent.objects.exclude(status__in=InboundEvent.FINAL).exists()
    assert records(full) == (S.REFUNDED, 1900, [(1900, "usd", R.SUCCEEDED, False, "stripe", True, True)])  # fmt: skip
    assert records(partial) == (
        S.PARTIALLY_REFUNDED,
        800,
        [(300, "usd", R.SUCCEEDED, False, "stripe", True, True),
         (500, "usd", R.SUCCEEDED, False, "stripe", True, True)],
    )  # fmt: skip
    # the failed refund is flagged for support; the order is as it was before the refund
    assert records(failing) == (
        before[failing.pk], 0, [(400, "usd", R.FAILED, True, "stripe", True, True)]
    )  # fmt: skip
    row = failing.refunds.get()
    assert (row.refund_id, row.failure_reason, row.resolved_at) == (
        failed_id,
        "expired_or_canceled_card",
        None,
    )
    # one history entry for the failure, however many events told it
    assert failing.history.filter(kind="refund_failed").count() == 1
    assert full.refunds.count() == 1 and partial.refunds.count() == 2


def test_a_failed_refund_is_flagged_and_the_order_returns_to_its_state_before(
    shop, deliver_event, shopper
):
    # given: an order paid with a card whose refunds fail later, refunded $4 then $15 (in full)
    [order] = paid_orders(shop, deliver_event, shopper, 1, card="4000000000005126")
    before = order.status
    first = refund(order, 400)
    deliver_all_events(deliver_event)
    assert records(order)[:2] == (S.PARTIALLY_REFUNDED, 400)
    second = refund(order, 1500)
    deliver_all_events(deliver_event)
    assert records(order)[:2] == (S.REFUNDED, 1900)
    # when: the issuer returns the second refund (the card was closed)
    failed = shop.run_scheduled(second)
    assert failed == [{"object": second, "action": "refund.fail"}]
    deliver_all_events(deliver_event)
    # then: back to where the first refund left it, the failure flagged for support
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (S.PARTIALLY_REFUNDED, 400)
    row = order.refunds.get(refund_id=second)
    assert (row.status, row.flagged, row.resolved_at) == (R.FAILED, True, None)
    assert order.refunds.get(refund_id=first).flagged is False
    note = order.history.get(kind="refund_failed").note
    assert second in note and "$15.00" in note and "flagged for support" in note
    # and the first one failing too brings the order back to its state before any refund
    shop.run_scheduled(first)
    deliver_all_events(deliver_event)
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (before, 0)
    assert order.refunds.filter(flagged=True).count() == 2
    # the failed refunds are on support's list of refunds needing attention
    assert set(
        OrderRefund.objects.filter(flagged=True, resolved_at=None).values_list(
            "refund_id", flat=True
        )
    ) == {first, second}


def test_refund_events_before_the_payment_are_recorded_once_the_payment_is(
    shop, deliver_event, shopper
):
    # given: an order paid and refunded $5 then $3 in Stripe before any of its events arrive
    order = buy(shopper, price_id("usd"), card="4242424242424242", emulator=shop)
    order.refresh_from_db()
    intent = stripe_api.retrieve(
        object_type="checkout.session", stripe_id=order.checkout_session_id
    ).payment_intent
    for amount in (500, 300):
        stripe_api.create(object_type="refund", params={"payment_intent": intent, "amount": amount})
    # when: every event arrives newest first (the refunds before the payment)
    for event in reversed(events_since(None)):
        assert deliver_event(event).status_code == 200
    # then: the payment recorded, then its refunds on it
    status, refunded, rows = records(order)
    assert (status, refunded) == (S.PARTIALLY_REFUNDED, 800)
    assert [r[:4] for r in rows] == [
        (300, "usd", R.SUCCEEDED, False),
        (500, "usd", R.SUCCEEDED, False),
    ]
