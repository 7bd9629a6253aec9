"""The one mirror write path: expanded children refreshed, never older over newer."""

import threading
import time
from datetime import timedelta

import pytest
import stripe
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djstripe.models import (
    BalanceTransaction,
    Charge,
    Customer,
    Invoice,
    LineItem,
    PaymentIntent,
    Price,
    Subscription,
    SubscriptionItem,
)

from billing import mirror, stripe_api
from billing.models import ObjectSync
from billing.webhooks import processing
from config.celery import app as celery_app

pytestmark = pytest.mark.django_db(transaction=True)


def paid_intent(metadata: dict) -> stripe.StripeObject:
    return stripe_api.create(
        object_type="payment_intent",
        params={"amount": 1500, "currency": "usd", "payment_method": "pm_card_visa",
                "confirm": True, "metadata": metadata},
    )  # fmt: skip


def write_now(obj) -> mirror.Synced:
    return mirror.object_write(data=obj, started_at=mirror.fetch_started())


def test_expanded_related_object_refreshes_its_existing_row(stripe_emulator):
    # Given a payment intent already mirrored
    intent = paid_intent({"v": "1"})
    write_now(intent)
    assert PaymentIntent.objects.get(id=intent.id).metadata == {"v": "1"}
    # and changed in Stripe since
    stripe_api.update(
        object_type="payment_intent", stripe_id=intent.id, params={"metadata": {"v": "2"}}
    )

    # When its charge is fetched with the intent expanded and written
    charge = stripe_api.retrieve(
        object_type="charge", stripe_id=intent.latest_charge, expand=["payment_intent"]
    )
    write_now(charge)

    # Then both rows hold Stripe's current state
    assert Charge.objects.get(id=charge.id).payment_intent_id == intent.id
    assert PaymentIntent.objects.get(id=intent.id).metadata == {"v": "2"}


def test_an_older_copy_never_replaces_a_newer_one(stripe_emulator):
    # Given a customer fetched twice, the second fetch after a change
    customer = stripe_api.create(object_type="customer", params={"name": "Old"})
    old_started = mirror.fetch_started()
    old = stripe_api.retrieve(object_type="customer", stripe_id=customer.id)
    stripe_api.update(object_type="customer", stripe_id=customer.id, params={"name": "New"})
    new_started = mirror.fetch_started()
    new = stripe_api.retrieve(object_type="customer", stripe_id=customer.id)

    # When the later fetch is written first, then the earlier one arrives
    first = mirror.object_write(data=new, started_at=new_started)
    second = mirror.object_write(data=old, started_at=old_started)

    # Then the mirror keeps the newer state, and says so
    assert first.written and not second.written
    assert second.obj["name"] == "New"
    assert Customer.objects.get(id=customer.id).stripe_data["name"] == "New"
    assert ObjectSync.objects.get(stripe_id=customer.id).fetch_started_at == new_started


def test_an_older_expanded_child_never_replaces_a_newer_row(stripe_emulator):
    # Given a charge fetched with its intent expanded, before the intent changed
    intent = paid_intent({"v": "1"})
    old_started = mirror.fetch_started()
    charge = stripe_api.retrieve(
        object_type="charge", stripe_id=intent.latest_charge, expand=["payment_intent"]
    )
    stripe_api.update(
        object_type="payment_intent", stripe_id=intent.id, params={"metadata": {"v": "2"}}
    )
    # and the intent's newer state already mirrored by a later fetch
    mirror.object_sync(object_type="payment_intent", stripe_id=intent.id)

    # When the older charge (carrying the older intent) is written
    mirror.object_write(data=charge, started_at=old_started)

    # Then the charge is written, and the intent keeps its newer state
    assert Charge.objects.filter(id=charge.id).exists()
    assert PaymentIntent.objects.get(id=intent.id).metadata == {"v": "2"}


def test_write_stores_json_safe_data(stripe_emulator):
    price = stripe_api.create(
        object_type="price",
        params={"currency": "jpy", "unit_amount": 1500, "product_data": {"name": "Ramen"}},
    )

    row = write_now(price).mirror

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

    # When the session is written with the subscription expanded
    fetched = stripe_api.retrieve(
        object_type="checkout.session", stripe_id=session.id, expand=["subscription"]
    )
    write_now(fetched)

    # Then the subscription row exists, items and all
    subscription = Subscription.objects.get(id=fetched.subscription.id)
    assert subscription.stripe_data["status"] == "active"
    assert subscription.items.count() == 1


def test_a_replayed_create_returns_the_present_state(stripe_emulator):
    # Given a session created with an idempotency key, then paid
    price = stripe_api.create(
        object_type="price",
        params={"currency": "usd", "unit_amount": 500, "product_data": {"name": "Pin"}},
    )
    params = {"mode": "payment", "success_url": "http://127.0.0.1/ok",
              "line_items": [{"price": price.id, "quantity": 1}]}  # fmt: skip
    first = stripe_api.create(object_type="checkout.session", params=params, idempotency_key="k1")
    stripe_emulator.complete_checkout(first.id)

    # When the same create is sent again (a retry), Stripe replays its first answer
    again = stripe_api.create(object_type="checkout.session", params=params, idempotency_key="k1")

    # Then the caller gets the session as it is now, not as it was
    assert again.id == first.id
    assert again.status == "complete"


def idle_transactions() -> int:
    """Other connections to this database sitting inside a transaction (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.mark.parametrize("path", ["event processing", "object_sync"])
def test_no_transaction_is_held_while_stripe_is_slow(stripe_emulator, deliver_event, path):
    """The fetch runs outside any transaction: a slow Stripe holds no lock and no
    transaction (on SQLite one held write lock would stop every webhook intake)."""
    customer = stripe_api.create(object_type="customer", params={"email": "slow@example.com"})
    (created,) = [
        e
        for e in stripe_api.list_all(object_type="event", params={"type": "customer.created"})
        if e.data.object.id == customer.id
    ]
    celery_app.conf.task_always_eager = False
    deliver_event(stripe_api.as_dict(created))
    celery_app.conf.task_always_eager = True
    # Given a Stripe that takes 3 s to answer
    stripe_emulator.set_faults(latency=3.0)

    def slow():
        try:
            if path == "object_sync":
                mirror.object_sync(object_type="customer", stripe_id=customer.id)
            else:
                processing.process(created.id)
        finally:
            connection.close()

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.7)  # the fetch is now waiting on Stripe

    # When another writer needs the database meanwhile
    began = time.monotonic()
    ObjectSync.objects.create(stripe_id="cus_other", object_type="customer")
    waited = time.monotonic() - began

    # Then it is not kept waiting, and no transaction is open behind the fetch
    assert waited < 1.0, f"a writer waited {waited:.1f}s behind a Stripe call"
    if connection.vendor == "postgresql":
        assert idle_transactions() == 0
    assert worker.is_alive(), "the fetch should still be waiting on Stripe"
    worker.join(15)
    assert Customer.objects.filter(id=customer.id).exists()
    state = ObjectSync.objects.get(stripe_id=customer.id)
    assert state.synced_at - state.fetch_started_at >= timedelta(seconds=2.5)


@pytest.mark.parametrize("size", [2, 8])
def test_new_objects_are_inserted_without_a_lookup_each(stripe_emulator, size):
    # Given payment intents in the mirror, and a page of their charges, each carrying its
    # expanded balance transaction, none mirrored (a backfill mirrors intents first)
    intents = [paid_intent({}) for _ in range(size)]
    mirror.objects_write(objects=intents, started_at=mirror.fetch_started())
    page = stripe_api.list_page(
        object_type="charge", params={"expand": ["data.balance_transaction"]}, starting_after=None
    )

    # When the page is written in one batch
    with CaptureQueriesContext(connection) as queries:
        mirror.objects_write(objects=page.data, started_at=mirror.fetch_started())

    # Then every charge and balance transaction is mirrored
    assert Charge.objects.count() == BalanceTransaction.objects.count() == size
    # each inserted once (on PostgreSQL, every row of a table in one COPY), with the one
    # lookup per table the batch makes, whatever the size, and no savepoint around each insert
    sql = [q["sql"] for q in queries.captured_queries]
    for table in ("djstripe_charge", "djstripe_balancetransaction"):
        inserts = sum(s.startswith(f'INSERT INTO "{table}"') for s in sql)
        copies = sum(s.startswith(f'COPY "{table}"') for s in sql)
        assert (copies, inserts) == ((1, 0) if connection.vendor == "postgresql" else (0, size))
        assert sum(s.startswith("SELECT") and f'FROM "{table}"' in s for s in sql) == 1, table
    assert sum(s.startswith("SAVEPOINT") for s in sql) <= 1  # the owner account's lookup


def test_a_nested_list_longer_than_its_page_is_fetched_whole(stripe_emulator):
    # Given an invoice of two lines, as Stripe sends it when the rest of the lines is on
    # another page (only the first line, has_more)
    customer = stripe_api.create(object_type="customer", params={"email": "l@example.com"})
    prices = [
        stripe_api.create(object_type="price", params={
            "currency": "usd", "unit_amount": amount, "recurring": {"interval": "month"},
            "product_data": {"name": f"Plan {amount}"}})
        for amount in (900, 300)
    ]  # fmt: skip
    subscription = stripe_api.create(
        object_type="subscription",
        params={"customer": customer.id, "items": [{"price": p.id} for p in prices],
                "default_payment_method": "pm_card_visa"},
    )  # fmt: skip
    invoice = stripe_api.as_dict(
        stripe_api.retrieve(object_type="invoice", stripe_id=subscription.latest_invoice)
    )
    lines = invoice["lines"]["data"]
    assert len(lines) == 2
    invoice["lines"] = {**invoice["lines"], "data": lines[:1], "has_more": True}

    # When it is written
    write_now(invoice)

    # Then both lines are mirrored, the second fetched from the invoice's lines
    mirrored = LineItem.objects.filter(id__in=[line["id"] for line in lines])
    assert sorted(mirrored.values_list("id", flat=True)) == sorted(line["id"] for line in lines)
    # and the mirror keeps the invoice as Stripe sent it
    stored = Invoice.objects.get(id=invoice["id"]).stripe_data
    assert [line["id"] for line in stored["lines"]["data"]] == [lines[0]["id"]]


def test_a_new_subscription_items_tax_rates_are_linked(stripe_emulator):
    # Given a new subscription whose item is taxed (a tax rate fakestripe does not make, set
    # on the item as Stripe sends it)
    customer = stripe_api.create(object_type="customer", params={"email": "t@example.com"})
    price = stripe_api.create(object_type="price", params={
        "currency": "usd", "unit_amount": 900, "recurring": {"interval": "month"},
        "product_data": {"name": "Taxed plan"}})  # fmt: skip
    subscription = stripe_api.as_dict(
        stripe_api.create(
            object_type="subscription",
            params={
                "customer": customer.id,
                "items": [{"price": price.id}],
                "default_payment_method": "pm_card_visa",
            },
        )
    )
    rate = {
        "id": "txr_1TaxedPlan", "object": "tax_rate", "active": True, "country": "DE",
        "created": subscription["created"], "description": None, "display_name": "VAT",
        "inclusive": False, "jurisdiction": "DE", "livemode": False, "metadata": {},
        "percentage": 19.0, "state": None, "tax_type": "vat",
    }  # fmt: skip
    item = subscription["items"]["data"][0]
    item["tax_rates"] = [rate]

    # When it is written (its item a new row, sent when the batch ends)
    write_now(subscription)

    # Then the item is mirrored and linked to its tax rate
    mirrored = SubscriptionItem.objects.get(id=item["id"])
    assert list(mirrored.tax_rates.values_list("id", flat=True)) == [rate["id"]]
    assert mirrored.subscription_id == subscription["id"]


def test_an_object_whose_row_already_says_it_is_not_rewritten(stripe_emulator):
    # Given a payment intent mirrored from a fetch
    intent = stripe_api.as_dict(paid_intent({}))
    first = write_now(intent)

    # When a later fetch brings the very same data (e.g. the next page that expands it)
    later = mirror.fetch_started()
    with CaptureQueriesContext(connection) as queries:
        again = mirror.object_write(data=intent, started_at=later)

    # Then the row is left as it is, and the guard records the later fetch
    assert again.written and again.previous == intent
    assert again.mirror.pk == first.mirror.pk
    assert not [q for q in queries.captured_queries if "djstripe_paymentintent" in q["sql"]
                and not q["sql"].startswith("SELECT")]  # fmt: skip
    state = ObjectSync.objects.get(stripe_id=intent["id"])
    assert state.fetch_started_at == later and state.fetch_count == 2

    # and data that differs is written
    changed = {**intent, "description": "Changed"}
    write_now(changed)
    assert PaymentIntent.objects.get(id=intent["id"]).stripe_data["description"] == "Changed"


@pytest.mark.parametrize("shared", ["price", "product"])
def test_two_writers_meeting_one_new_object_write_it_once(stripe_emulator, shared):
    if connection.vendor != "postgresql":
        pytest.skip("row locks between concurrent writers are PostgreSQL's (SQLite: one writer)")
    from django.db import transaction

    # Given two new subscriptions the mirror has never seen, to one price (each carries it,
    # expanded in its item) or to two prices of one product (which each only names)
    product = stripe_api.create(object_type="product", params={"name": "Shared plan"})
    prices = [
        stripe_api.create(object_type="price", params={
            "currency": "usd", "unit_amount": 900 + n, "recurring": {"interval": "month"},
            "product": product.id})
        for n in range(1 if shared == "price" else 2)
    ]  # fmt: skip
    subscriptions = [
        stripe_api.as_dict(stripe_api.create(object_type="subscription", params={
            "customer": stripe_api.create(
                object_type="customer", params={"email": f"s{n}@example.com"}).id,
            "items": [{"price": prices[n % len(prices)].id}],
            "default_payment_method": "pm_card_visa"}))
        for n in range(2)
    ]  # fmt: skip
    # (and the mirror's owner account known, as after a backfill's first page)
    for subscription in subscriptions:
        write_now(stripe_api.retrieve(object_type="customer", stripe_id=subscription["customer"]))
    stripe_emulator.reset_stats()
    started = mirror.fetch_started()
    first_written, errors = threading.Event(), []

    def first():
        try:
            with transaction.atomic():
                mirror.objects_write(objects=[subscriptions[0]], started_at=started)
                first_written.set()
                time.sleep(0.5)  # its price row written, not committed yet
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    def second():
        try:
            first_written.wait(10)
            mirror.objects_write(objects=[subscriptions[1]], started_at=started)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    # When two writers write them at the same time
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # Then the second waited for the first and found its rows: nothing inserted twice
    assert errors == []
    assert Subscription.objects.filter(id__in=[s["id"] for s in subscriptions]).count() == 2
    assert sorted(Price.objects.values_list("id", flat=True)) == sorted(p.id for p in prices)
    # and the product dj-stripe fetches (only named) was fetched once, by the first
    assert stripe_emulator.stats()["by_route"].get("GET /v1/products/{id}") == 1
