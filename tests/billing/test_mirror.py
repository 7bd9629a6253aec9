"""The mirror upsert refreshes expanded related rows, which dj-stripe alone leaves stale."""

import pytest
from djstripe.models import Charge, PaymentIntent, Subscription

from billing import mirror, stripe_api

pytestmark = pytest.mark.django_db(transaction=True)


def test_expanded_related_object_refreshes_its_existing_row(stripe_emulator):
    # Given a payment intent already mirrored
    intent = stripe_api.create(
        object_type="payment_intent",
        params={"amount": 1500, "currency": "usd", "payment_method": "pm_card_visa",
                "confirm": True, "metadata": {"v": "1"}},
    )  # fmt: skip
    mirror.upsert(intent)
    assert PaymentIntent.objects.get(id=intent.id).metadata == {"v": "1"}
    # and changed in Stripe since
    stripe_api.update(
        object_type="payment_intent", stripe_id=intent.id, params={"metadata": {"v": "2"}}
    )

    # When its charge is fetched with the intent expanded and upserted
    charge = stripe_api.retrieve(
        object_type="charge", stripe_id=intent.latest_charge, expand=["payment_intent"]
    )
    mirror.upsert(charge)

    # Then both rows hold Stripe's current state
    assert Charge.objects.get(id=charge.id).payment_intent_id == intent.id
    assert PaymentIntent.objects.get(id=intent.id).metadata == {"v": "2"}


def test_upsert_stores_json_safe_data(stripe_emulator):
    price = stripe_api.create(
        object_type="price",
        params={"currency": "jpy", "unit_amount": 1500, "product_data": {"name": "Ramen"}},
    )

    row = mirror.upsert(price)

    # stripe-python hands decimals as Decimal; the mirror keeps Stripe's wire form
    assert row.stripe_data["unit_amount_decimal"] == "1500"


def test_expanded_object_not_yet_mirrored_is_created_with_its_lists(stripe_emulator):
    # Given a paid subscription-mode session whose subscription the mirror has never seen
    price = stripe_api.create(
        object_type="price",
        params={"currency": "usd", "unit_amount": 900, "recurring": {"interval": "month"},
                "product_data": {"name": "Plan"}},
    )  # fmt: skip
    session = stripe_api.create(
        object_type="checkout.session",
        params={"mode": "subscription", "success_url": "http://127.0.0.1/ok",
                "customer_email": "sub@example.com",
                "line_items": [{"price": price.id, "quantity": 1}]},
    )  # fmt: skip
    stripe_emulator.complete_checkout(session.id)

    # When the session is upserted with the subscription expanded
    fetched = stripe_api.retrieve(
        object_type="checkout.session", stripe_id=session.id, expand=["subscription"]
    )
    mirror.upsert(fetched)

    # Then the subscription row exists, items and all
    subscription = Subscription.objects.get(id=fetched.subscription.id)
    assert subscription.stripe_data["status"] == "active"
    assert subscription.items.count() == 1
