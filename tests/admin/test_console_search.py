"""Support finds an order by whatever its customer quotes, in the order list's search box: every
kind of Stripe id, an email, an order number. Each is an exact, indexed lookup through the order
references (``orders.references``), which every writer of the mirror keeps, and which
``manage.py order_references_fill`` fills for a shop that had orders before them. The suite
runs on SQLite and PostgreSQL, so these do too."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from djstripe.models import Charge, Invoice, PaymentIntent

from billing import stripe_api
from billing.console import metadata_edit, resync
from billing.models import InboundEvent
from billing.operators import backfill
from orders.models import Order, OrderReference
from orders.references import references_record
from tests.admin.conftest import PASSWORD, buy, deliver_all_events, price_id

pytestmark = pytest.mark.django_db(transaction=True)


def search(client, term: str) -> tuple[list[str], list[str]]:
    """The orders the search box lists for ``term``, and the messages shown."""
    response = client.get(reverse("admin:orders_order_changelist"), {"q": term})
    assert response.status_code == 200, term
    orders = [order.public_id for order in response.context["cl"].result_list]
    return orders, [str(m) for m in get_messages(response.wsgi_request)]


def subscription_invoice(world) -> Invoice:
    return Invoice.objects.get(
        stripe_data__parent__subscription_details__subscription=world.subscription.subscription_id
    )


def quoted(world) -> dict[str, tuple[str, Order]]:
    """What a customer may quote, and the order each must find."""
    paid, member = world.paid, world.subscription
    charge = Charge.objects.get(payment_intent_id=paid.payment_intent_id, status="succeeded")
    event = InboundEvent.objects.filter(object_id=world.refund_id).first()
    invoice = subscription_invoice(world)
    # a renewal's charge carries no link keys: it is tied through its invoice's payment
    renewal_intent = invoice.stripe_data["payments"]["data"][0]["payment"]["payment_intent"]
    renewal_charge = Charge.objects.get(payment_intent_id=renewal_intent)
    return {
        "order id": (paid.public_id, paid),
        "order number": (paid.number, paid),
        "order number in lower case": (paid.number.lower(), paid),
        "checkout session cs_": (paid.checkout_session_id, paid),
        "payment intent pi_": (paid.payment_intent_id, paid),
        "charge ch_": (charge.id, paid),
        "refund re_": (world.refund_id, paid),
        "event evt_ (of the refund)": (event.id, paid),
        "subscription sub_": (member.subscription_id, member),
        "invoice in_": (invoice.id, member),
        "invoice number": (invoice.stripe_data["number"], member),
        "subscription's payment intent": (renewal_intent, member),
        "subscription's charge": (renewal_charge.id, member),
        "email": ("shopper@example.com", paid),
        "email in another case": ("Shopper@Example.COM", paid),
        "beginning of the email": ("shopp*", paid),
        "username": ("shopper", paid),
    }


def check_finds_every_order(client, world) -> list[str]:
    failures = []
    for kind, (term, order) in quoted(world).items():
        found, _ = search(client, term)
        if order.public_id not in found:
            failures.append(f"{kind} {term!r} found {found}, not {order.public_id}")
    return failures


def test_each_id_a_customer_quotes_finds_their_order(world, staff):
    assert not check_finds_every_order(staff.client("support"), world)


def test_a_customer_id_finds_all_their_orders(world, staff):
    found, _ = search(staff.client("support"), world.paid.customer_id)
    assert set(found) >= {world.paid.public_id, world.subscription.public_id}


def test_an_id_of_no_order_says_so(world, staff):
    client = staff.client("support")
    for term in ("pi_doesnotexist000000", "dp_1NoSuchDispute0000", "in_0000unknown00000"):
        found, shown = search(client, term)
        assert found == []
        assert f"No order is tied to {term}." in shown
    # an email nobody has: nothing, and no error
    assert search(client, "nobody@example.org") == ([], [])


def test_partial_matches_that_no_index_serves_are_not_offered(world, staff):
    client = staff.client("support")
    # the middle of an address, or a prefix too short to narrow a big shop
    assert search(client, "example.com")[0] == []
    assert search(client, "sh*")[0] == []


def test_the_fill_ties_every_order_of_a_shop_that_had_none(world, staff):
    # Given a shop whose orders predate the references (none written)
    before = set(OrderReference.objects.values_list("stripe_id", "order_id"))
    OrderReference.objects.all().delete()
    client = staff.client("support")
    assert check_finds_every_order(client, world)  # the Stripe ids find nothing now

    # When the operator runs the command
    call_command("order_references_fill", batch_size=2, verbosity=0)

    # Then every order is found by each of its ids again, and nothing the writers tied is missed
    assert not check_finds_every_order(client, world)
    assert before <= set(OrderReference.objects.values_list("stripe_id", "order_id"))
    call_command("order_references_fill", verbosity=0)  # again: nothing changes, no error


def _untie(*stripe_ids: str) -> None:
    OrderReference.objects.filter(stripe_id__in=stripe_ids).delete()


def _tied(stripe_id: str) -> set[str]:
    return set(
        OrderReference.objects.filter(stripe_id=stripe_id).values_list(
            "order__public_id", flat=True
        )
    )


def test_events_tie_what_they_write(world, deliver_event):
    # a refund made in Stripe's Dashboard: the shop hears of it only through its events
    paid = world.paid
    refund = stripe_api.create(
        object_type="refund", params={"payment_intent": paid.payment_intent_id, "amount": 100}
    )
    assert _tied(refund.id) == set()
    deliver_all_events(deliver_event)
    assert _tied(refund.id) == {paid.public_id}


def test_the_return_page_ties_what_it_confirms(world, stripe_emulator):
    # Given an order paid on Checkout whose events have not arrived yet
    order = buy(world.customer, price_id("usd"), card="4242424242424242", emulator=stripe_emulator)
    intent = stripe_api.retrieve(
        object_type="checkout.session", stripe_id=order.checkout_session_id
    ).payment_intent
    assert _tied(intent) == set()

    # When the customer lands on the return page, which confirms the payment with Stripe
    customer = Client()
    customer.login(username="shopper", password=PASSWORD)
    response = customer.get(
        reverse("orders:return", args=[order.public_id]), {"session_id": order.checkout_session_id}
    )

    # Then the payment intent it mirrored is tied to the order
    assert response.status_code == 200
    assert _tied(intent) == {order.public_id}


def test_backfill_ties_what_it_mirrors(world):
    _untie(world.refund_id)
    run = backfill.backfill_start(types=["refund"], since=None, max_rps=100)
    backfill.backfill_run(run=run)
    assert _tied(world.refund_id) == {world.paid.public_id}


def test_resync_ties_what_it_fetches(world, staff):
    paid = world.paid
    _untie(paid.payment_intent_id)
    resync.object_resync(
        actor=staff.support, object_type="payment_intent", stripe_id=paid.payment_intent_id
    )
    assert _tied(paid.payment_intent_id) == {paid.public_id}


def test_a_metadata_edit_naming_an_order_ties_the_object(world, staff):
    # Given a payment intent made by hand, naming no order
    intent = stripe_api.create(object_type="payment_intent", params={
        "amount": 700, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True,
    })  # fmt: skip
    resync.object_resync(actor=staff.billing, object_type="payment_intent", stripe_id=intent.id)
    assert _tied(intent.id) == set()
    row = PaymentIntent.objects.get(id=intent.id)

    # When Billing admin links it to the unpaid order
    metadata_edit.metadata_update(
        actor=staff.billing, object_type="payment_intent", stripe_id=intent.id,
        expected=row.metadata or {}, changes={"order_id": world.declined.public_id},
        request_token="tie-it",
    )  # fmt: skip

    # Then the search box finds the order by it
    assert _tied(intent.id) == {world.declined.public_id}
    assert world.declined.public_id in search(staff.client("support"), intent.id)[0]


def test_a_charge_written_before_its_invoice_is_tied_when_the_invoice_is(world):
    # Given the subscription's charge and payment intent tied to nothing, as when the charge's
    # event is processed before the invoice's
    invoice = subscription_invoice(world)
    intent = invoice.stripe_data["payments"]["data"][0]["payment"]["payment_intent"]
    charge = Charge.objects.get(payment_intent_id=intent)
    _untie(intent, charge.id, invoice.id)
    references_record([charge.stripe_data])
    assert _tied(charge.id) == set()

    # When the invoice is written
    references_record([invoice.stripe_data])

    # Then the charge already mirrored is tied with it
    assert _tied(charge.id) == _tied(intent) == {world.subscription.public_id}
