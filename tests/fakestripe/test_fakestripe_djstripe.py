"""dj-stripe, an independent Stripe client, can mirror every object type the emulator emits.

`sync_from_stripe_data` also fetches related objects (the customer of a charge, the product
of a price, the account) through stripe-python's global `api_base`, so those calls must
succeed against the emulator too.
"""

from __future__ import annotations

import pytest
import stripe

pytestmark = pytest.mark.django_db

KEY = "sk_test_fakestripe0000000000000000"


@pytest.fixture
def stripe_at_emulator(fakestripe):
    previous = stripe.api_base
    stripe.api_base = fakestripe.url
    yield
    stripe.api_base = previous


def test_djstripe_syncs_every_emitted_type(client, paid_flows, stripe_at_emulator):
    from djstripe import models

    product, one_time, monthly = paid_flows.product, paid_flows.one_time, paid_flows.monthly
    pay, sub, endpoint = paid_flows.pay, paid_flows.sub, paid_flows.endpoint
    intent = client.v1.payment_intents.retrieve(pay.payment_intent)
    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 100})

    cases = [
        (models.Customer, client.v1.customers.retrieve(pay.customer)),
        (models.Product, product),
        (models.Price, one_time),
        (models.Price, monthly),
        (models.Session, pay),
        (models.Session, sub),
        (models.PaymentIntent, intent),
        (models.Charge, client.v1.charges.retrieve(intent.latest_charge)),
        (models.Refund, refund),
        (models.Subscription, client.v1.subscriptions.retrieve(sub.subscription)),
        (models.Invoice, client.v1.invoices.retrieve(sub.invoice)),
        # dj-stripe 2.11 reads an event's `request` with isinstance(dict), which stripe-python
        # 15's objects no longer are (it would store the object's JSON as the request id,
        # too long for PostgreSQL's varchar(50)); events are synced from the plain dict.
        (models.Event, client.v1.events.list().data[0].to_dict(for_json=True)),
        (models.WebhookEndpoint, client.v1.webhook_endpoints.retrieve(endpoint.id)),
    ]
    for model, data in cases:
        synced = model.sync_from_stripe_data(data, api_key=KEY)
        assert synced.id == data["id"], model.__name__
    assert models.Charge.objects.get(id=intent.latest_charge).metadata == {"order_id": "1"}
    assert models.Subscription.objects.get(id=sub.subscription).status == "active"
