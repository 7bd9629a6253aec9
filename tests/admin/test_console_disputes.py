"""Disputes tracked to their deadline: an order paid with Stripe's dispute test card
(4000 0000 0000 0259) is disputed as soon as its events arrive; the Disputes list and the order's
page show it with its evidence due date; the bank's decision (won, lost) closes it.

Orders are bought through the checkout service and paid on the emulator's Checkout; every event
is delivered, signed, through the real intake and processed by the real handlers.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from billing import stripe_api
from billing.display import admin_url
from orders.models import Order, OrderDispute
from orders.references import references_record
from tests.admin.conftest import buy, deliver_all_events, price_id

pytestmark = pytest.mark.django_db(transaction=True)
St = OrderDispute.State
DISPUTE_CARD = "4000000000000259"


def disputed_order(world, stripe_emulator, deliver_event) -> tuple[Order, dict]:
    order = buy(world.customer, price_id("usd"), card=DISPUTE_CARD, emulator=stripe_emulator)
    deliver_all_events(deliver_event)
    order.refresh_from_db()
    [dispute] = [
        stripe_api.as_dict(d)
        for d in stripe_api.list_all(
            object_type="dispute", params={"payment_intent": order.payment_intent_id}
        )
    ]
    return order, dispute


def due_text(moment: dt.datetime) -> str:
    """The console's one format of a moment (config/formats/en): 12 Jan 2027, 14:05 UTC."""
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def test_a_dispute_card_payment_shows_the_order_disputed_with_its_due_date(
    world, staff, stripe_emulator, deliver_event
):
    order, dispute = disputed_order(world, stripe_emulator, deliver_event)
    due = dt.datetime.fromtimestamp(dispute["evidence_details"]["due_by"], dt.UTC)
    # the order is paid, and disputed
    assert order.status in (Order.Status.PAID, Order.Status.FULFILLED)
    assert order.disputed == Order.Disputed.OPEN
    row = OrderDispute.objects.get(dispute_id=dispute["id"])
    assert (row.order, row.state, row.amount, row.reason) == (
        order, St.NEEDS_RESPONSE, 1900, "fraudulent",
    )  # fmt: skip
    assert row.due_by == due and row.respond_by == due and row.funds_withdrawn == 1900
    assert order.history.filter(note__contains=f"dispute {row.dispute_id} opened").exists()
    # the Disputes list: soonest deadline first, with its order, due date and Dashboard link
    support = staff.client("support")
    listing = support.get(reverse("admin:orders_orderdispute_changelist")).content.decode()
    assert row.dispute_id in listing and order.number in listing
    assert due_text(due) in listing and "dispute-due later" in listing  # 7 days from now
    assert "Open in Stripe Dashboard" in listing
    open_only = support.get(reverse("admin:orders_orderdispute_changelist") + "?due=open")
    assert row.dispute_id in open_only.content.decode()
    # the orders list can be filtered on it
    disputed = support.get(reverse("admin:orders_order_changelist") + "?disputed__exact=open")
    assert disputed.status_code == 200 and order.public_id in disputed.content.decode()
    assert world.paid.public_id not in disputed.content.decode()
    # the order's page says so, with the deadline
    page = support.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert 'id="order-disputed"' in page and "disputed: open" in page.lower()
    section = page[page.index('id="dispute-records"') :]
    assert row.dispute_id in section[: section.index("</table>")]
    assert due_text(due) in section[: section.index("</table>")]
    # and Refund says why it cannot refund a charged-back payment (nothing sent to Stripe)
    refund = support.get(reverse("admin:orders_orderrefund_new", args=[order.public_id]))
    assert refund.status_code == 200


def test_a_won_dispute_closes_it(world, staff, stripe_emulator, deliver_event):
    order, dispute = disputed_order(world, stripe_emulator, deliver_event)
    # when: evidence that wins is submitted in Stripe (the Dashboard), and the bank decides
    stripe_api.update(
        object_type="dispute",
        stripe_id=dispute["id"],
        params={"evidence": {"uncategorized_text": "winning_evidence"}},
    )
    deliver_all_events(deliver_event)
    row = OrderDispute.objects.get(dispute_id=dispute["id"])
    assert row.state == St.UNDER_REVIEW and row.respond_by is None
    order.refresh_from_db()
    assert order.disputed == Order.Disputed.OPEN
    stripe_emulator.run_scheduled(dispute["id"])
    deliver_all_events(deliver_event)
    # then: won, closed, the money back, the order no longer open
    row.refresh_from_db()
    order.refresh_from_db()
    assert (row.state, row.stripe_status, row.funds_withdrawn) == (St.WON, "won", 0)
    assert row.closed_at is not None and not row.open
    assert order.disputed == Order.Disputed.WON
    assert order.history.filter(note__contains="reinstated").exists()
    listing = staff.client("support").get(
        reverse("admin:orders_orderdispute_changelist") + "?due=open"
    )
    assert dispute["id"] not in listing.content.decode()


def test_a_lost_dispute_closes_it(world, staff, stripe_emulator, deliver_event):
    order, dispute = disputed_order(world, stripe_emulator, deliver_event)
    stripe_emulator.submit_dispute(dispute["id"])
    stripe_emulator.close_dispute(dispute["id"], "lost")
    deliver_all_events(deliver_event)
    row = OrderDispute.objects.get(dispute_id=dispute["id"])
    order.refresh_from_db()
    assert (row.state, row.funds_withdrawn, row.respond_by) == (St.LOST, 1900, None)
    assert row.closed_at is not None
    assert order.disputed == Order.Disputed.LOST
    page = staff.client("billing").get(reverse("admin:orders_order_change", args=[order.pk]))
    assert "dispute lost" in page.content.decode().lower()
    # events delivered again change nothing
    history = order.history.count()
    for event in [stripe_api.as_dict(e) for e in stripe_api.list_all(object_type="event")]:
        if event["type"].startswith("charge.dispute."):
            assert deliver_event({**event, "id": event["id"] + "_again"}).status_code == 200
    row.refresh_from_db()
    order.refresh_from_db()
    assert (row.state, order.disputed, order.history.count()) == (St.LOST, "lost", history)


def test_the_search_finds_a_disputed_order_by_its_dispute_id(
    world, staff, stripe_emulator, deliver_event
):
    order, dispute = disputed_order(world, stripe_emulator, deliver_event)
    client = staff.client("support")
    # the orders list's search box finds the order by the du_ id a customer's bank quoted
    listed = client.get(reverse("admin:orders_order_changelist"), {"q": dispute["id"]})
    assert [o.public_id for o in listed.context["cl"].result_list] == [order.public_id]
    # the front page's one box opens the dispute (the mirror has it); the Disputes list finds it
    found = client.get(reverse("admin:orders_order_find"), {"q": dispute["id"]})
    assert found.status_code == 302
    assert found["Location"] == admin_url("djstripe_dispute", dispute["id"])
    disputes = client.get(reverse("admin:orders_orderdispute_changelist"), {"q": dispute["id"]})
    assert [r.dispute_id for r in disputes.context["cl"].result_list] == [dispute["id"]]
    # an older dispute's dp_ id, as the mirror would write it, ties to the order through its charge
    older = {**dispute, "id": "dp_1OlderDispute0000000000"}
    references_record([older])
    listed = client.get(reverse("admin:orders_order_changelist"), {"q": older["id"]})
    assert [o.public_id for o in listed.context["cl"].result_list] == [order.public_id]
    found = client.get(reverse("admin:orders_order_find"), {"q": older["id"]})
    assert found["Location"] == admin_url("orders_order", order.public_id)
