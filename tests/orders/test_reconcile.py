"""stripe_reconcile: each kind of inconsistency, seeded in the emulator through the real
checkout, is found, and what the product's services can repair is repaired by --fix."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from djstripe.models import PaymentIntent

from billing import stripe_api
from billing.models import ReconcileReport
from orders.models import Order
from tests.orders.helpers import bought, stripe_obj

S = Order.Status
pytestmark = pytest.mark.django_db(transaction=True)


def reconcile(*args: str) -> tuple[dict, str]:
    """Run the command as JSON; return its report and whether it exited 1 (findings stand)."""
    out = StringIO()
    try:
        call_command("stripe_reconcile", "--format", "json", *args, stdout=out)
        standing = ""
    except CommandError as exc:
        standing = str(exc)
    return json.loads(out.getvalue()), standing


def by_kind(report: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for finding in report["findings"]:
        found.setdefault(finding["kind"], []).append(finding)
    return found


@pytest.fixture
def inconsistent(client, customer, catalog, stripe_emulator):
    """One of each kind, as they happen: no webhook reached the shop, so paid orders were
    never fulfilled; link keys were removed from related objects; a refund was made in the
    Dashboard; an order's amount was edited locally; an intent links to a missing order."""
    client.force_login(customer)
    paid = bought(client, catalog["eur"])
    stripe_emulator.complete_checkout(paid.checkout_session_id)
    subscribed = bought(client, catalog["monthly"])
    stripe_emulator.complete_checkout(subscribed.checkout_session_id)

    session = stripe_obj(
        "checkout.session", paid.checkout_session_id, ["payment_intent.latest_charge"]
    )
    intent, charge = session["payment_intent"], session["payment_intent"]["latest_charge"]
    stripe_api.update(
        object_type="payment_intent",
        stripe_id=intent["id"],
        params={"metadata": {"order_id": "", "user_id": ""}},
    )
    stripe_api.update(
        object_type="charge", stripe_id=charge["id"], params={"metadata": {"order_id": ""}}
    )
    stripe_api.create(object_type="refund", params={"charge": charge["id"], "amount": 100})

    edited = bought(client, catalog["usd"])
    Order.objects.filter(pk=edited.pk).update(amount_total=edited.amount_total + 1)
    stray = stripe_api.create(
        object_type="payment_intent",
        params={"amount": 700, "currency": "usd", "metadata": {"order_id": "ord_nowhere"}},
    )
    return {
        "paid": paid,
        "subscribed": subscribed,
        "edited": edited,
        "intent": intent["id"],
        "charge": charge["id"],
        "stray": stray.id,
    }


def test_reconcile_finds_each_kind_and_fix_repairs_what_services_can(inconsistent):
    paid, subscribed, edited = (inconsistent[k] for k in ("paid", "subscribed", "edited"))

    report, standing = reconcile()

    found = by_kind(report)
    assert {f["order"] for f in found["unfulfilled_payment"]} == {
        paid.public_id,
        subscribed.public_id,
    }
    assert {f["stripe_id"] for f in found["missing_link_keys"]} == {
        inconsistent["intent"],
        inconsistent["charge"],
    }
    assert [f["stripe_id"] for f in found["dangling_link"]] == [inconsistent["stray"]]
    mismatches = {f["order"]: f["detail"] for f in found["order_mismatch"]}
    assert mismatches[edited.public_id].startswith("amount")
    assert mismatches[paid.public_id] == "refunded 0 here, 100 in Stripe"
    assert "need attention" in standing
    paid.refresh_from_db()
    assert paid.status == S.AWAITING_PAYMENT  # a report changes nothing
    assert report["counts"] == {k: len(found.get(k, [])) for k in report["counts"]}
    assert report["counts"]["unrecorded_payment"] == 0  # the stray intent names no order

    # --fix
    fixed, standing = reconcile("--fix")

    for order in (paid, subscribed):
        order.refresh_from_db()
        assert order.history.filter(source="reconcile", to_status=S.PAID).exists()
    assert subscribed.status == S.FULFILLED
    assert paid.status == S.PARTIALLY_REFUNDED and paid.amount_refunded == 100
    assert stripe_obj("payment_intent", inconsistent["intent"])["metadata"] == {
        "order_id": paid.public_id,
        "user_id": str(paid.user_id),
    }
    assert stripe_obj("charge", inconsistent["charge"])["metadata"]["order_id"] == paid.public_id
    # the mirror was written from Stripe's answer, through the one write path
    assert PaymentIntent.objects.get(id=inconsistent["intent"]).metadata["order_id"] == (
        paid.public_id
    )
    outcomes = {f["stripe_id"]: f["fixed"] for f in fixed["findings"]}
    assert outcomes[inconsistent["intent"]] == "copied order_id, user_id"
    assert outcomes[inconsistent["stray"]] == ""  # a dangling link needs a person

    # what could not be repaired is what remains
    again, standing = reconcile()
    assert {f["kind"] for f in again["findings"]} == {"dangling_link", "order_mismatch"}
    assert [f["order"] for f in by_kind(again)["order_mismatch"]] == [edited.public_id]
    assert "2 finding(s)" in standing


def test_reports_are_kept_and_a_clean_run_exits_zero(client, customer, catalog, stripe_emulator):
    client.force_login(customer)
    bought(client, catalog["usd"])  # awaiting payment, in agreement with Stripe

    out = StringIO()
    call_command("stripe_reconcile", stdout=out)

    assert "No findings" in out.getvalue()
    report = ReconcileReport.objects.get()
    assert report.counts == dict.fromkeys(
        (
            "order_mismatch",
            "dangling_link",
            "unfulfilled_payment",
            "missing_link_keys",
            "unrecorded_payment",
            "duplicate_subscription",
        ),
        0,
    )
    assert report.api_calls >= 6  # one list per type walked


def test_table_format_lists_findings_with_their_outcome(inconsistent):
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("stripe_reconcile", stdout=out)
    text = out.getvalue()
    assert "unfulfilled_payment" in text and "needs a person" in text
    assert "fixable: fulfil the order" in text


def test_a_payment_intent_made_by_hand_is_found_and_recorded_flagged(
    client, customer, catalog, stripe_emulator
):
    """An intent charged by hand naming an order while its own session was still open: its
    event left it to the session. Once the session is over, reconcile finds it unrecorded and
    --fix records it, flagged for support, never applied."""
    from orders.models import OrderPayment

    client.force_login(customer)
    order = bought(client, catalog["usd"])
    by_hand = stripe_api.create(
        object_type="payment_intent",
        params={
            "amount": order.amount_total, "currency": order.currency,
            "payment_method": "pm_card_visa", "confirm": True,
            "metadata": {"order_id": order.public_id, "user_id": str(customer.pk)},
        },
    )  # fmt: skip
    # while the session is open, nothing to say about it
    report, _ = reconcile()
    assert "unrecorded_payment" not in by_kind(report)
    # the session is paid (and fulfilled through --fix, no webhook reached the shop)
    stripe_emulator.complete_checkout(order.checkout_session_id)
    report, _ = reconcile("--fix")
    (found,) = by_kind(report)["unrecorded_payment"]
    assert (found["stripe_id"], found["order"]) == (by_hand.id, order.public_id)
    assert "flagged for support (second payment" in found["fixed"]
    payment = OrderPayment.objects.get(payment_intent_id=by_hand.id)
    assert payment.kind == OrderPayment.Kind.PAYMENT_INTENT and not payment.applied
    assert payment.flag == OrderPayment.Flag.SECOND_PAYMENT
    order.refresh_from_db()
    assert order.status == S.FULFILLED
    assert order.payments.filter(applied=True).count() == 1
    # and a second run has nothing more to say about it
    again, _ = reconcile()
    assert "unrecorded_payment" not in by_kind(again)
