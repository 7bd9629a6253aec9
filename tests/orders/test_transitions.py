"""The order state machine: every (from, to) pair is either allowed or refused, as defined."""

from __future__ import annotations

import itertools

import pytest

from orders.models import TRANSITIONS, Order
from orders.services import TransitionRefused, order_transition

S = Order.Status
# The definition, written out again on purpose: a change to the machine must change this too.
ALLOWED = {
    (S.AWAITING_PAYMENT, S.PAYMENT_PROCESSING),
    (S.AWAITING_PAYMENT, S.PAID),
    (S.AWAITING_PAYMENT, S.PAYMENT_FAILED),
    (S.AWAITING_PAYMENT, S.EXPIRED),
    (S.AWAITING_PAYMENT, S.CANCELED),
    (S.PAYMENT_PROCESSING, S.PAID),
    (S.PAYMENT_PROCESSING, S.PAYMENT_FAILED),
    (S.PAYMENT_PROCESSING, S.CANCELED),
    (S.PAYMENT_FAILED, S.AWAITING_PAYMENT),
    (S.PAYMENT_FAILED, S.PAYMENT_PROCESSING),
    (S.PAYMENT_FAILED, S.PAID),
    (S.PAYMENT_FAILED, S.EXPIRED),
    (S.PAYMENT_FAILED, S.CANCELED),
    (S.EXPIRED, S.AWAITING_PAYMENT),
    (S.EXPIRED, S.CANCELED),
    (S.PAID, S.FULFILLED),
    (S.PAID, S.REFUNDED),
    (S.PAID, S.PARTIALLY_REFUNDED),
    (S.PAID, S.CANCELED),
    (S.FULFILLED, S.REFUNDED),
    (S.FULFILLED, S.PARTIALLY_REFUNDED),
    (S.FULFILLED, S.CANCELED),
    (S.PARTIALLY_REFUNDED, S.REFUNDED),
    (S.PARTIALLY_REFUNDED, S.CANCELED),
    # a refund that fails later: back to what the other refunds leave
    (S.PARTIALLY_REFUNDED, S.PAID),
    (S.PARTIALLY_REFUNDED, S.FULFILLED),
    (S.REFUNDED, S.PARTIALLY_REFUNDED),
    (S.REFUNDED, S.PAID),
    (S.REFUNDED, S.FULFILLED),
}
PAIRS = list(itertools.product(S.values, S.values))


def test_the_machine_is_the_definition():
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED
    assert set(TRANSITIONS) == set(S.values)


@pytest.mark.parametrize(("from_status", "to_status"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_transition(customer, from_status, to_status):
    # given an order in from_status (set directly: this is the fixture, not a transition)
    order = Order.objects.create(
        user=customer, request_token="t", mode="payment", currency="usd", amount_total=100,
        status=from_status,
    )  # fmt: skip
    # when a service asks for to_status
    if (from_status, to_status) in ALLOWED:
        changed = order_transition(order=order, to_status=to_status, source="test", actor=customer)
        # then it happens and is recorded with who did it
        assert changed.status == to_status
        order.refresh_from_db()
        assert order.status == to_status
        entry = order.history.get()
        assert (entry.from_status, entry.to_status, entry.actor) == (
            from_status, to_status, customer,
        )  # fmt: skip
    else:
        # then it is refused and nothing changes
        with pytest.raises(TransitionRefused):
            order_transition(order=order, to_status=to_status, source="test")
        order.refresh_from_db()
        assert order.status == from_status
        assert not order.history.exists()
