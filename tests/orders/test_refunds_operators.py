"""The operators' commands know refunds and disputes: ``stripe_backfill`` mirrors them from
Stripe's lists (not one by one), and ``stripe_reconcile`` reports an order whose refunds or
disputes its records lack or hold in another state (their events never arrived), and with
``--fix`` records them as Stripe has them.

Orders are bought and paid on the emulator's Checkout with their events delivered; then refunds
and a dispute happen in Stripe and none of their events reaches the shop.
"""

from __future__ import annotations

import pytest
from djstripe.models import Dispute, Refund

from billing import stripe_api
from billing.operators import backfill
from orders import reconcile
from orders.models import Order, OrderDispute, OrderRefund
from tests.admin.conftest import deliver_all_events
from tests.orders.test_refunds import paid_orders, refund

pytestmark = pytest.mark.django_db(transaction=True)
S = Order.Status
R = OrderRefund.Status


@pytest.fixture
def shopper(django_user_model):
    return django_user_model.objects.create_user(
        "operators-shopper", email="operators@example.com", password="a-long-test-password"
    )


def findings(report, *object_types: str) -> dict[str, dict]:
    return {
        f["stripe_id"]: f
        for f in report.findings
        if f["kind"] == "order_mismatch" and f["object_type"] in object_types
    }


def test_backfill_mirrors_refunds_and_disputes_and_reconcile_repairs_their_records(
    stripe_emulator, webhook_endpoint, catalog, deliver_event, shopper
):
    refunded, disputed, failing = paid_orders(stripe_emulator, deliver_event, shopper, 3)
    before = failing.status
    # a refund recorded here, which then failed in Stripe with no event reaching the shop
    failed_id = refund(failing, 700)
    deliver_all_events(deliver_event)
    assert failing.refunds.get().status == R.SUCCEEDED
    # given: from here on no event arrives
    stripe_emulator.fail_refund(failed_id)
    partial_id = refund(refunded, 500)
    charge = stripe_api.retrieve(
        object_type="payment_intent", stripe_id=disputed.payment_intent_id
    ).latest_charge
    dispute = stripe_emulator.dispute_charge(charge, reason="product_not_received")
    Refund.objects.filter(id__in=[partial_id]).delete()

    # stripe_backfill mirrors them from the lists: one list call per type, however many
    calls = stripe_api.calls_total()
    stripe_emulator.reset_stats()
    run = backfill.backfill_run(
        run=backfill.backfill_start(types=["refund", "dispute"], since=None, max_rps=100)
    )
    assert run.status == "completed", run
    # (one account check to start; a failed refund's failure transaction comes expanded)
    assert stripe_emulator.stats()["by_route"] == {
        "GET /v1/account": 1, "GET /v1/refunds": 1, "GET /v1/disputes": 1,
    }  # fmt: skip
    assert stripe_api.calls_total() - calls == 3
    assert Refund.objects.get(id=partial_id).stripe_data["amount"] == 500
    assert Refund.objects.get(id=failed_id).stripe_data["status"] == "failed"
    assert Dispute.objects.get(id=dispute["id"]).stripe_data["status"] == "needs_response"

    # stripe_reconcile reports each order whose records disagree
    report = reconcile.reconcile_run()
    found = findings(report, "refund", "dispute")
    assert set(found) == {partial_id, failed_id, dispute["id"]}
    assert found[partial_id]["order"] == refunded.public_id
    assert found[partial_id]["detail"] == "refund not recorded here, succeeded of 500 in Stripe"
    assert found[failed_id]["detail"] == "refund succeeded of 700 here, failed of 700 in Stripe"
    assert found[dispute["id"]]["order"] == disputed.public_id
    assert found[dispute["id"]]["detail"] == "dispute not recorded here, needs_response in Stripe"

    # --fix records them as Stripe has them
    fixed = reconcile.reconcile_run(fix=True)
    assert all(
        not f["fixed"].startswith("failed") for f in findings(fixed, "refund", "dispute").values()
    )
    for order in (refunded, disputed, failing):
        order.refresh_from_db()
    assert (refunded.status, refunded.amount_refunded) == (S.PARTIALLY_REFUNDED, 500)
    assert refunded.refunds.get().refund_id == partial_id
    assert disputed.disputed == Order.Disputed.OPEN
    assert OrderDispute.objects.get(dispute_id=dispute["id"]).order == disputed
    row = failing.refunds.get()
    assert (row.status, row.flagged, failing.status, failing.amount_refunded) == (
        R.FAILED, True, before, 0,
    )  # fmt: skip
    # and a run after finds nothing more about them
    assert findings(reconcile.reconcile_run(), "refund", "dispute") == {}
