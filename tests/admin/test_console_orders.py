"""The order's whole story: found by any id a customer quotes, with its items, totals, refunds,
Stripe objects, one timeline and the events of all its objects (reprocessable, with reasons)."""

from __future__ import annotations

import html

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse
from djstripe.models import Charge, Invoice, Product, Refund, Session

from billing.models import AuditEntry, InboundEvent
from orders.models import Order, OrderPayment

pytestmark = pytest.mark.django_db(transaction=True)
ORDERS = reverse("admin:orders_order_changelist")


def found(client, term: str) -> set[str]:
    response = client.get(ORDERS, {"q": term})
    assert response.status_code == 200
    return {order.public_id for order in response.context["cl"].result_list}


def test_an_order_is_found_by_every_id_a_customer_may_quote(world, staff):
    client = staff.client("support")
    paid, sub = world.paid, world.subscription
    charge = Charge.objects.get(payment_intent_id=paid.payment_intent_id, status="succeeded")
    invoice = Invoice.objects.get(
        stripe_data__parent__subscription_details__subscription=sub.subscription_id
    )
    failed = Charge.objects.filter(status="failed").get()
    # the subscription's first payment: its charge and intent carry no order link of their
    # own; the invoice they paid does (its payments, mirrored with it)
    renewal_intent = invoice.stripe_data["payments"]["data"][0]["payment"]["payment_intent"]
    renewal_charge = Charge.objects.get(payment_intent_id=renewal_intent)
    assert not renewal_charge.metadata
    event = InboundEvent.objects.filter(object_id=world.refund_id).first()
    expectations = {
        paid.public_id: {paid.public_id},
        # the order number the customer's pages show, as they would read it out
        paid.number: {paid.public_id},
        paid.number.lower(): {paid.public_id},
        paid.checkout_session_id: {paid.public_id},
        paid.payment_intent_id: {paid.public_id},
        charge.id: {paid.public_id},
        world.refund_id: {paid.public_id},
        event.id: {paid.public_id},
        sub.subscription_id: {sub.public_id},
        invoice.id: {sub.public_id},
        renewal_intent: {sub.public_id},
        renewal_charge.id: {sub.public_id},
        failed.id: {world.declined.public_id},  # a declined attempt finds its order too
        world.declined.checkout_session_id: {world.declined.public_id},
        # the customer has all three orders
        paid.customer_id: {paid.public_id, sub.public_id, world.declined.public_id},
        "shopper@example.com": {paid.public_id, sub.public_id, world.declined.public_id},
        "shopper": {paid.public_id, sub.public_id, world.declined.public_id},
        "pi_doesnotexist0000": set(),
    }
    wrong = {term: found(client, term) for term in expectations}
    assert {t: v for t, v in wrong.items() if v != expectations[t]} == {}


def test_the_order_page_tells_the_whole_story(world, staff):
    order = world.paid
    client = staff.client("billing")
    response = client.get(reverse("admin:orders_order_change", args=[quote(order.public_id)]))
    assert response.status_code == 200
    text = html.unescape(response.content.decode())
    # items and totals, formatted for the currency
    assert "Field Guide to Stripe Webhooks (ebook)" in text
    assert "$19.00" in text and "$5.00" in text and "$14.00" in text
    # refunds
    refund = Refund.objects.get(id=world.refund_id)
    assert refund.id in text
    # every linked Stripe object, with status in words and a link to its console page
    linked = {obj.id: obj for obj in response.context["linked_objects"]}
    for stripe_id in (order.checkout_session_id, order.payment_intent_id, order.customer_id,
                      world.refund_id):  # fmt: skip
        assert stripe_id in linked, stripe_id
        assert reverse("admin:djstripe_" + linked[stripe_id].row._meta.model_name + "_change",
                       args=[quote(stripe_id)]) in text  # fmt: skip
    charge = next(o for o in linked.values() if o.object_type == "charge")
    assert charge.described.status == "succeeded, partially refunded"
    assert charge.last_synced is not None
    # one timeline, newest first, merging transitions, events and console actions
    timeline = response.context["timeline"]
    assert [e.at for e in timeline] == sorted((e.at for e in timeline), reverse=True)
    kinds = {e.kind for e in timeline}
    assert {"order", "event"} <= kinds
    assert any(e.title == "charge.refunded" and e.url for e in timeline)
    assert any(e.title == "Paid → Complete" for e in timeline)  # the customer's words
    # the event history of all its objects
    events = response.context["events"]
    assert {e.object_id for e in events} >= {order.payment_intent_id, world.refund_id}
    assert "Event history" in text and 'id="reprocess"' in text


def test_a_subscription_order_lists_the_payment_of_its_invoice(world, staff):
    order = world.subscription
    response = staff.client("support").get(
        reverse("admin:orders_order_change", args=[quote(order.public_id)])
    )
    types = sorted(o.object_type for o in response.context["linked_objects"])
    assert types == ["charge", "checkout.session", "customer", "invoice", "payment_intent",
                     "subscription"]  # fmt: skip
    assert "$9.00 / month" in html.unescape(response.content.decode())


def test_a_declined_attempt_reads_as_declined(world, staff):
    response = staff.client("support").get(
        reverse("admin:orders_order_change", args=[quote(world.declined.public_id)])
    )
    # The order's own attempt (the Payment Link session naming it is listed too, flagged).
    stray = OrderPayment.objects.exclude(flag="").get(order=world.declined)
    paid_by_stray = Session.objects.get(id=stray.checkout_session_id).payment_intent_id
    statuses = {
        o.object_type: o.described.status
        for o in response.context["linked_objects"]
        if getattr(o.row, "payment_intent_id", None) != paid_by_stray
    }
    assert statuses["charge"].startswith("failed: ")
    assert "declined" in statuses["charge"]
    assert "¥1,500" in html.unescape(response.content.decode())
    assert "Uncaptured" not in response.content.decode()


def test_reprocess_explains_what_was_not_requeued(world, staff):
    order = world.paid
    charge = Charge.objects.get(payment_intent_id=order.payment_intent_id, status="succeeded")
    processed_ids = [order.payment_intent_id, charge.id, world.refund_id]
    events = InboundEvent.objects.filter(
        object_id__in=processed_ids, status=InboundEvent.Status.PROCESSED
    )
    failed, processed = events[:2]
    InboundEvent.objects.filter(pk=failed.pk).update(
        status=InboundEvent.Status.FAILED, last_error="Traceback...\nRuntimeError: boom"
    )
    ignored = InboundEvent.objects.filter(status=InboundEvent.Status.IGNORED).first()
    client = staff.client("billing")

    response = client.post(
        reverse("admin:orders_order_reprocess", args=[quote(order.public_id)]),
        {"event": [failed.pk, processed.pk, ignored.pk]},
        follow=True,
    )

    shown = [str(m) for m in response.context["messages"]]
    # each message names its event first, so Django's capfirst cannot turn evt_ into Evt_
    assert f"Event {failed.pk}: requeued (was failed (retries exhausted))" in shown, shown
    assert any(
        m.startswith(f"Event {processed.pk}: not requeued: already processed") for m in shown
    )
    assert any(m.startswith(f"Event {ignored.pk}: not requeued: ignored") for m in shown)
    assert "requeued (was failed" in html.unescape(response.content.decode())
    failed.refresh_from_db()
    assert failed.status == InboundEvent.Status.PROCESSED  # processed again (eager here)
    results = dict(
        AuditEntry.objects.filter(action="reprocess", actor=staff.billing).values_list(
            "message", "result"
        )
    )
    assert sorted(results.values()) == ["done", "refused", "refused"]


def test_order_links_survive_ids_that_look_like_quoted_characters(world, staff):
    # "ord_23.." would be read back as "ord#.." if links were not quoted as the admin unquotes
    odd = "ord_23c6b9634a9c4cb9fe51"
    Order.objects.filter(pk=world.paid.pk).update(public_id=odd)
    Charge.objects.filter(payment_intent_id=world.paid.payment_intent_id).update(
        metadata={"order_id": odd, "user_id": str(world.customer.pk)}
    )
    client = staff.client("support")
    charges = client.get(reverse("admin:djstripe_charge_changelist"), {"q": odd})
    link = reverse("admin:orders_order_change", args=[quote(odd)])
    assert link in charges.content.decode()
    page = client.get(link)
    assert page.status_code == 200 and page.context["original"].public_id == odd


def test_pages_open_at_ids_typed_by_hand_that_look_like_quoted_characters(world, staff):
    # Typed into the address bar unquoted: the admin reads "_23" as "#" and "_3A" as ":"
    odd = "ord_23c6b9634a9c4cb9fe51"
    Order.objects.filter(pk=world.paid.pk).update(public_id=odd)
    client = staff.client("support")
    page = client.get(f"/admin/orders/order/{odd}/change/")
    assert page.status_code == 200 and page.context["original"].public_id == odd
    typed = "prod_3Atypedbyhand"
    product = Product.objects.first()  # a copy of a mirrored product, under such an id
    product.pk, product.id = None, typed
    product.save()
    page = client.get(f"/admin/djstripe/product/{typed}/change/")
    assert page.status_code == 200 and page.context["original"].id == typed
    # and an id that is no row's still says so
    missing = client.get("/admin/orders/order/ord_23ffffffffffffffffff/change/")
    assert missing.status_code == 302
