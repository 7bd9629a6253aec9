"""A shop with real history for the support console's tests.

Everything is made the way production makes it: orders bought through the checkout service,
paid (and declined) on the emulator's Checkout, a refund created in Stripe, and every event
the emulator emitted delivered, signed, through the real webhook intake and processed, so
each mirrored model has rows written by the pipeline.
"""

from __future__ import annotations

import itertools
import urllib.error
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from djstripe.models import Charge, Price

from billing import stripe_api
from billing.console import metadata_edit, resync
from billing.models import InboundEvent
from billing.operators import backfill
from billing.webhooks.destinations import event_destination_create
from config.celery import app as celery_app
from orders import reconcile
from orders.demo import demo_catalog_seed
from orders.models import Order
from orders.services import catalog_sync, order_checkout_start
from orders.staff import BILLING_ADMIN, SUPPORT, groups_sync
from tests.conftest import TEST_STRIPE_KEY

_tokens = itertools.count(1)
PASSWORD = "a-long-staff-password-1"


def price_id(currency: str, interval: str | None = None) -> str:
    for price in Price.objects.filter(currency=currency, active=True):
        if ((price.stripe_data.get("recurring") or {}).get("interval")) == interval:
            return price.id
    raise LookupError((currency, interval))


def deliver_all_events(deliver_event) -> int:
    """Every event the emulator emitted so far, oldest first, through the real intake."""
    stored = set(InboundEvent.objects.values_list("id", flat=True))
    emitted = [stripe_api.as_dict(e) for e in stripe_api.list_all(object_type="event")]
    fresh = [e for e in reversed(emitted) if e["id"] not in stored]
    for event in fresh:
        response = deliver_event(event)
        assert response.status_code == 200, response.content
    return len(fresh)


def buy(user, price: str, *, card: str, emulator) -> Order:
    step = order_checkout_start(
        user=user, price_id=price, quantity=1, request_token=f"console-{next(_tokens)}"
    )
    try:
        emulator.complete_checkout(step.order.checkout_session_id, card=card)
    except urllib.error.HTTPError as error:
        # A decline answers 402; the failed attempt (payment intent, charge) stays in Stripe.
        assert error.code == 402, error.payload
    return Order.objects.get(pk=step.order.pk)


@dataclass
class World:
    customer: object
    paid: Order  # one-time, paid, partly refunded
    subscription: Order  # monthly, paid
    declined: Order  # JPY, one declined attempt, unpaid
    refund_id: str
    endpoint: object

    def refresh(self) -> World:
        for order in (self.paid, self.subscription, self.declined):
            order.refresh_from_db()
        return self


@pytest.fixture
def world(transactional_db, stripe_emulator, webhook_endpoint, deliver_event) -> World:
    # The seed is processed in process even in worker tests; their worker is for what they test.
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        return _seed(stripe_emulator, webhook_endpoint, deliver_event)
    finally:
        celery_app.conf.task_always_eager = eager


def _seed(stripe_emulator, webhook_endpoint, deliver_event) -> World:
    demo_catalog_seed()
    catalog_sync()
    customer = get_user_model().objects.create_user(
        "shopper", email="shopper@example.com", password=PASSWORD
    )
    paid = buy(customer, price_id("usd"), card="4242424242424242", emulator=stripe_emulator)
    subscription = buy(
        customer, price_id("usd", "month"), card="4242424242424242", emulator=stripe_emulator
    )
    declined = buy(customer, price_id("jpy"), card="4000000000000002", emulator=stripe_emulator)
    # and a payment support must look at: a Payment Link style session naming the unpaid
    # order, for another amount (recorded and flagged, not applied)
    stray = stripe_api.create(object_type="checkout.session", params={
        "mode": "payment", "line_items": [{"price": price_id("jpy"), "quantity": 2}],
        "success_url": "https://example.com/ok", "client_reference_id": declined.public_id,
    })  # fmt: skip
    stripe_emulator.complete_checkout(stray.id)
    deliver_all_events(deliver_event)
    paid.refresh_from_db()
    refund = stripe_api.create(
        object_type="refund", params={"payment_intent": paid.payment_intent_id, "amount": 500}
    )
    # and a chargeback on a payment of no order (made by hand with Stripe's dispute test card):
    # the dispute pages have a row, and no order of the seed is disputed
    stripe_api.create(object_type="payment_intent", params={
        "amount": 2500, "currency": "usd", "confirm": True,
        "payment_method": "pm_card_createDispute",
    })  # fmt: skip
    deliver_all_events(deliver_event)
    # and the console used once: a resync, a metadata edit, a (small) background resync job
    operator = get_user_model().objects.create_superuser("operator", "op@example.com", PASSWORD)
    resync.object_resync(actor=operator, object_type="payment_intent",
                           stripe_id=paid.payment_intent_id)  # fmt: skip
    charge = Charge.objects.filter(payment_intent_id=paid.payment_intent_id).first()
    metadata_edit.metadata_update(actor=operator, object_type="charge", stripe_id=charge.id,
                             expected=charge.metadata or {}, changes={"note": "seeded"},
                             request_token="seed")  # fmt: skip
    resync.resync_job_start(actor=operator, object_type="customer",
                              stripe_ids=[paid.customer_id])  # fmt: skip
    deliver_all_events(deliver_event)
    # and the operators' commands, once each: a backfill run and a reconcile report
    backfill.backfill_run(run=backfill.backfill_start(types=["customer"], since=None, max_rps=100))
    reconcile.reconcile_run()
    # and an event destination (thin events) beside the endpoint, as after `stripe_webhooks
    # upgrade --payload thin`; its URL is never reached (the seed posts deliveries itself)
    event_destination_create(base_url="http://127.0.0.1:9")
    # and a forged delivery: refused, counted and sampled
    assert deliver_event({"id": "evt_forged"}, secret="whsec_forged").status_code == 400
    return World(
        customer=customer,
        paid=paid,
        subscription=subscription,
        declined=declined,
        refund_id=refund.id,
        endpoint=webhook_endpoint,
    ).refresh()


@dataclass
class Staff:
    superuser: object
    support: object
    billing: object
    nobody: object

    def client(self, name: str) -> Client:
        client = Client(raise_request_exception=False)
        client.force_login(getattr(self, name))
        return client


@pytest.fixture
def staff(transactional_db) -> Staff:
    groups_sync()
    users = get_user_model().objects
    support = users.create_user("support", password=PASSWORD, is_staff=True)
    support.groups.add(Group.objects.get(name=SUPPORT))
    billing = users.create_user("billing", password=PASSWORD, is_staff=True)
    billing.groups.add(Group.objects.get(name=BILLING_ADMIN))
    return Staff(
        superuser=users.create_superuser("root", "root@example.com", PASSWORD),
        support=support,
        billing=billing,
        nobody=users.create_user("nobody", password=PASSWORD, is_staff=True),
    )


SECRETS = (TEST_STRIPE_KEY,)
