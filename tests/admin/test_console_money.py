"""An order's money adds up across all its payments, and a flagged payment is resolved with a
note that reaches the order's history, the audit log and the History page. The second payment
is made in Stripe (the emulator, over HTTP) as a Dashboard user would, and its events are
delivered signed through the real intake."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import quote
from django.urls import reverse

from billing import stripe_api
from billing.models import AuditEntry
from orders.models import OrderPayment
from tests.admin.conftest import deliver_all_events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def second_payment(world, deliver_event) -> OrderPayment:
    """$19 more, by a payment intent naming the already paid (and $5 refunded) order."""
    order = world.paid
    intent = stripe_api.create(object_type="payment_intent", params={
        "amount": order.amount_total, "currency": order.currency, "confirm": True,
        "payment_method": "pm_card_visa", "metadata": {"order_id": order.public_id},
    })  # fmt: skip
    deliver_all_events(deliver_event)
    payment = OrderPayment.objects.get(payment_intent_id=intent.id)
    assert payment.flag == OrderPayment.Flag.SECOND_PAYMENT and not payment.applied
    return payment


def test_the_order_page_adds_up_every_payment(world, staff, second_payment):
    order = world.paid
    page = staff.client("support").get(reverse("admin:orders_order_change", args=[order.pk]))
    text = page.content.decode()
    money = text[text.index('id="order-money"') :]
    money = money[: money.index("</table>")]
    # the customer paid $19 twice and got $5 back: $38 paid, $5 refunded, $33 net
    assert "$38.00" in money and "$5.00" in money and "$33.00" in money
    assert "of which flagged: $19.00 paid" in money
    # the flagged row names its Stripe object
    assert second_payment.payment_intent_id in money
    assert str(second_payment) == second_payment.payment_intent_id
    # support sees it is open, but not a Resolve link they could not use
    assert 'id="open-flagged"' in text and 'id="resolve-flagged"' not in text
    resolve = reverse("admin:orders_orderpayment_resolve") + f"?ids={second_payment.pk}"
    assert staff.client("support").get(resolve).status_code == 403


def test_a_flag_is_resolved_with_a_note_after_a_confirmation(world, staff, second_payment):
    order = world.paid
    client = staff.client("billing")
    page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert 'id="resolve-flagged"' in page
    resolve = reverse("admin:orders_orderpayment_resolve")
    # The link opens a page naming the payment, asking for a note: nothing is marked yet
    shown = client.get(f"{resolve}?ids={second_payment.pk}").content.decode()
    assert second_payment.payment_intent_id in shown and "How was it handled?" in shown
    # Without a note it is refused
    refused = client.post(resolve, {"ids": str(second_payment.pk), "note": " "})
    assert (
        refused.status_code == 200 and "Say how the payment was handled" in refused.content.decode()
    )
    second_payment.refresh_from_db()
    assert second_payment.resolved_at is None
    # With one, it is resolved; the note is in the order's history, the audit log and History
    note = "refunded the duplicate in the Dashboard"
    done = client.post(resolve, {"ids": str(second_payment.pk), "note": note})
    assert done.status_code == 302 and quote(order.public_id) in done["Location"]
    second_payment.refresh_from_db()
    assert second_payment.resolved_by == staff.billing
    assert order.history.filter(note__contains=note).exists()
    entry = AuditEntry.objects.get(
        action="payment_resolve", stripe_id=second_payment.payment_intent_id
    )
    assert entry.actor == staff.billing and note in entry.message
    assert LogEntry.objects.filter(object_id=str(order.pk), change_message__contains=note).exists()
    history = client.get(reverse("admin:orders_order_history", args=[order.pk])).content.decode()
    assert note in history
    # and the action on the payments list leads to the same page
    changelist = reverse("admin:orders_orderpayment_changelist")
    action = client.post(
        changelist, {"action": "mark_resolved", "_selected_action": [second_payment.pk]}
    )
    assert action.status_code == 302 and resolve in action["Location"]
