"""Queries per page do not grow with the rows shown: every console changelist, search and
change page is measured with the seeded shop, then again after many more rows of every kind
(objects, events, deliveries, audit entries, history), and may not make more queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from djstripe.models import (
    Charge,
    Customer,
    Invoice,
    PaymentIntent,
    Price,
    Product,
    Refund,
    Session,
    Subscription,
)  # fmt: skip

from billing import mirror, stripe_api
from billing.console import resync
from billing.models import AuditEntry, InboundEvent, ResyncJob, WebhookDelivery
from orders.models import Order, OrderHistory, OrderPayment

pytestmark = pytest.mark.django_db(transaction=True)
# No page may need more than this, however many rows (a guard against slow creep too).
CEILING = 30
GROWTH = 25


def pages(world) -> dict[str, str]:
    paid = world.paid
    charge = Charge.objects.get(payment_intent_id=paid.payment_intent_id, status="succeeded")
    event = InboundEvent.objects.filter(object_id=paid.payment_intent_id).first()
    job = ResyncJob.objects.order_by("pk").first()
    urls = {}
    for model, key in [
        ("customer", paid.customer_id),
        ("paymentintent", paid.payment_intent_id),
        ("charge", charge.id),
        ("refund", world.refund_id),
        ("session", paid.checkout_session_id),
        ("subscription", world.subscription.subscription_id),
        ("invoice", Invoice.objects.first().id),
        ("product", paid.items.get().price.product_id),
        ("price", paid.items.get().price_id),
        ("webhookendpoint", world.endpoint.id),
    ]:
        changelist = reverse(f"admin:djstripe_{model}_changelist")
        urls[f"{model} list"] = changelist
        urls[f"{model} search"] = f"{changelist}?q={key}"
        urls[f"{model} page"] = reverse(f"admin:djstripe_{model}_change", args=[quote(key)])
    orders = reverse("admin:orders_order_changelist")
    urls["order list"] = orders
    urls["order search by pi_"] = f"{orders}?q={paid.payment_intent_id}"
    urls["order search by email"] = f"{orders}?q=shopper@example.com"
    for kind, term in (
        ("cs_", paid.checkout_session_id), ("ch_", charge.id), ("re_", world.refund_id),
        ("cus_", paid.customer_id), ("sub_", world.subscription.subscription_id),
        ("in_", Invoice.objects.first().id), ("evt_", event.pk), ("number", paid.number),
        ("email prefix", "shopp*"), ("username", "shopper"), ("unknown id", "pi_nothing0000"),
    ):  # fmt: skip
        urls[f"order search by {kind}"] = f"{orders}?q={term}"
    urls["order list by status"] = f"{orders}?status=fulfilled"
    urls["front page"] = reverse("admin:index")
    urls["resolve page"] = reverse("admin:orders_orderpayment_resolve") + "?ids=1,2"
    urls["charge list by status"] = reverse("admin:djstripe_charge_changelist") + "?status=failed"
    urls["invoice list by status"] = reverse("admin:djstripe_invoice_changelist") + "?status=paid"
    urls["order page"] = reverse("admin:orders_order_change", args=[quote(paid.public_id)])
    payments = reverse("admin:orders_orderpayment_changelist")
    urls["payment list"] = payments
    urls["payment flagged"] = f"{payments}?flagged=yes"
    urls["payment search"] = f"{payments}?q={world.declined.number}"
    flagged = OrderPayment.objects.exclude(flag="").order_by("pk").first()
    urls["payment page"] = reverse("admin:orders_orderpayment_change", args=[flagged.pk])
    urls["declined order page"] = reverse(
        "admin:orders_order_change", args=[quote(world.declined.public_id)]
    )
    for model in ("inboundevent", "webhookdelivery", "objectsync", "auditentry", "resyncjob"):
        urls[f"{model} list"] = reverse(f"admin:billing_{model}_changelist")
    events = reverse("admin:billing_inboundevent_changelist")
    urls["events by object"] = f"{events}?q={paid.payment_intent_id}"
    urls["events by type"] = f"{events}?type=charge.refunded"
    urls["events failed"] = f"{events}?status=failed"
    urls["sync states by type"] = (
        reverse("admin:billing_objectsync_changelist") + "?object_type=charge"
    )
    urls["event page"] = reverse("admin:billing_inboundevent_change", args=[quote(event.pk)])
    urls["job page"] = reverse("admin:billing_resyncjob_change", args=[job.pk])
    urls["metadata form"] = reverse("admin:djstripe_charge_metadata", args=[quote(charge.id)])
    urls["index"] = reverse("admin:index")
    return urls


def count_queries(client, urls: dict[str, str]) -> dict[str, int]:
    counts = {}
    for name, url in urls.items():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, (name, response.status_code)
        counts[name] = len(queries)
    return counts


def grow(world, staff) -> None:
    """Many more rows of every kind the pages list, all tied to the pages measured."""
    paid = world.paid
    # payment attempts tagged with the order (its page lists them), mirrored by the write path
    started = mirror.fetch_started()
    intents = [
        stripe_api.create(
            object_type="payment_intent",
            params={
                "amount": 1900,
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": True,
                "customer": paid.customer_id,
                "metadata": {"order_id": paid.public_id, "user_id": str(world.customer.pk)},
            },
        )
        for _ in range(GROWTH)
    ]
    charges = [
        stripe_api.retrieve(object_type="charge", stripe_id=i.latest_charge) for i in intents
    ]
    mirror.objects_write(objects=[*intents, *charges], started_at=started)
    refunds = [
        stripe_api.create(object_type="refund", params={"payment_intent": i.id, "amount": 100})
        for i in intents
    ]
    mirror.objects_write(objects=refunds, started_at=mirror.fetch_started())
    # more customers, products, prices, sessions, subscriptions and their invoices
    customers = [stripe_api.create(object_type="customer", params={"email": f"x{i}@example.com"})
                 for i in range(GROWTH)]  # fmt: skip
    mirror.objects_write(objects=customers, started_at=mirror.fetch_started())
    started = mirror.fetch_started()
    products = [stripe_api.create(object_type="product", params={"name": f"Extra {i}"})
                for i in range(GROWTH)]  # fmt: skip
    prices = [
        stripe_api.create(object_type="price", params={
            "product": p.id, "currency": "usd", "unit_amount": 500,
            "recurring": {"interval": "month"}})
        for p in products
    ]  # fmt: skip
    mirror.objects_write(objects=[*products, *prices], started_at=started)
    started = mirror.fetch_started()
    sessions = [
        stripe_api.create(object_type="checkout.session", params={
            "mode": "payment", "customer": customers[0].id, "success_url": "http://x/",
            "line_items": [{"price": paid.items.get().price_id, "quantity": 1}]})
        for _ in range(GROWTH)
    ]  # fmt: skip
    subscriptions = [
        stripe_api.create(object_type="subscription", params={
            "customer": c.id, "items": [{"price": p.id}], "default_payment_method": "pm_card_visa",
            "metadata": {"order_id": world.subscription.public_id}})
        for c, p in zip(customers, prices, strict=True)
    ]  # fmt: skip
    invoices = [
        stripe_api.retrieve(object_type="invoice", stripe_id=s.latest_invoice, expand=["payments"])
        for s in subscriptions
    ]
    mirror.objects_write(objects=[*sessions, *subscriptions, *invoices], started_at=started)
    template = InboundEvent.objects.filter(object_id=paid.payment_intent_id).first()
    assert template.deliveries.count() == 1
    now = timezone.now()
    for n in range(GROWTH):
        # events of the order's objects, each with two deliveries
        event = InboundEvent.objects.create(
            id=f"evt_grow_{n}", type="payment_intent.succeeded", created=now - timedelta(minutes=n),
            object_type="payment_intent", object_id=paid.payment_intent_id,
            payload={**template.payload, "id": f"evt_grow_{n}"}, status=InboundEvent.Status.PROCESSED,
            outcome="object fetched", processed_at=now, last_attempt_at=now, attempts=1,
        )  # fmt: skip
        for outcome in ("accepted", "duplicate"):
            WebhookDelivery.objects.create(event=event, endpoint=world.endpoint,
                                           endpoint_uuid=world.endpoint.djstripe_uuid,
                                           outcome=outcome, status_code=200, body_size=10)  # fmt: skip
        OrderHistory.objects.create(order=paid, from_status="paid", to_status="paid",
                                    source="test", actor=staff.support, note=f"note {n}")  # fmt: skip
        Order.objects.create(user=world.customer, request_token=f"grow-{n}", email="shopper@example.com",
                             mode="payment", currency="usd", amount_total=100,
                             payment_intent_id=paid.payment_intent_id if n == 0 else None,
                             customer_id=paid.customer_id)  # fmt: skip
    # many payments, flagged and not, on the measured orders
    OrderPayment.objects.bulk_create(
        OrderPayment(order=order, kind="checkout_session", status="succeeded", amount=50,
                     currency=order.currency, checkout_session_id=f"cs_grow_{order.pk}_{n}",
                     source="test", flag="amount_mismatch" if n % 2 else "",
                     flag_note="grown", resolved_by=staff.billing if n % 3 else None)
        for order in (paid, world.declined) for n in range(GROWTH)
    )  # fmt: skip
    # the measured event page gets many deliveries, the measured job many entries
    for _ in range(GROWTH):
        WebhookDelivery.objects.create(event=template, endpoint=world.endpoint,
                                       endpoint_uuid=world.endpoint.djstripe_uuid,
                                       outcome="duplicate", status_code=200, body_size=10)  # fmt: skip
    job = ResyncJob.objects.order_by("pk").first()
    AuditEntry.objects.bulk_create(
        AuditEntry(actor=staff.support, actor_name="support", action="resync", job=job,
                   object_type="customer", stripe_id=c.id, result="unchanged")
        for c in customers
    )  # fmt: skip
    # audit entries on the pages' objects, and a bigger job
    resync.resync_job_start(actor=staff.support, object_type="customer",
                              stripe_ids=[c.id for c in customers])  # fmt: skip
    for charge in Charge.objects.filter(payment_intent_id=paid.payment_intent_id):
        resync.object_resync(actor=staff.support, object_type="charge", stripe_id=charge.id)
    for _ in range(3):
        resync.object_resync(actor=staff.support, object_type="payment_intent",
                               stripe_id=paid.payment_intent_id)  # fmt: skip
    for model in (PaymentIntent, Charge, Refund, Customer, Product, Price, Session, Subscription,
                  Invoice):  # fmt: skip
        assert model.objects.count() > GROWTH, model
    assert AuditEntry.objects.count() > GROWTH


def test_queries_per_page_do_not_grow_with_rows(world, staff, django_assert_max_num_queries):
    client = staff.client("billing")
    urls = pages(world)
    client.get(urls["index"])  # warm the session and the content-type cache
    small = count_queries(client, urls)

    grow(world, staff)

    failures = []
    for name, url in urls.items():
        try:
            with django_assert_max_num_queries(min(small[name], CEILING)):
                assert client.get(url).status_code == 200
        except (AssertionError, pytest.fail.Exception) as exc:
            failures.append(
                f"{name}: {small[name]} queries before growth; {str(exc).splitlines()[0]}"
            )
    assert not failures, "\n".join(failures)
    print("COUNTS", small)
    assert max(small.values()) <= CEILING, small
