"""One vocabulary on both sides: the words a customer reads for an order's status are the words
support reads in the console (list, filter, page, history); one date format on every page; one
name for each console section, on the index and in the breadcrumbs; plain words where the
pipeline says what it did; a refusal that says why; and a list column that finds the order the
object's own page finds.

The shop is the console's seeded one (tests/admin/conftest.py): bought, paid, declined,
refunded on the emulator, every event delivered through the real intake."""

from __future__ import annotations

import html
import re

import pytest
from django.apps import apps
from django.contrib.admin.utils import quote
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djstripe.models import Charge

from billing.models import InboundEvent
from orders.models import Order, OrderPayment
from tests.admin.conftest import deliver_all_events
from tests.admin.test_console_metadata import form_data, load_form, stripe_metadata

pytestmark = pytest.mark.django_db(transaction=True)
S = Order.Status
# 12 Jan 2027, 14:05 UTC: the one format of a moment (config/formats/en).
MOMENT = r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC"
# A date written another way (an API version such as 2026-08-26.dahlia is a name, not a date).
ISO_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}(?!\.[a-z])")


def visible(response) -> str:
    """The text a person reads: no tags, attributes, scripts or raw JSON blocks."""
    text = response.content.decode()
    text = re.sub(r"<(script|style|pre)\b.*?</\1>", " ", text, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


def breadcrumbs(response) -> str:
    found = re.search(r'<div class="breadcrumbs">(.*?)</div>', response.content.decode(), re.S)
    text = html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).replace("\u203a", ">")
    return " ".join(text.split())


def _customer(world) -> Client:
    client = Client()
    client.force_login(world.customer)
    return client


def _subscription_charge(world) -> Charge:
    charge = Charge.objects.filter(customer_id=world.subscription.customer_id).exclude(
        payment_intent_id=world.paid.payment_intent_id
    )
    found = [c for c in charge if not (c.metadata or {}).get("order_id")]
    assert found, "the subscription's charge carries no order_id of its own"
    return found[0]


def test_statuses_read_the_same_to_the_customer_and_to_support(world, staff):
    paid, subscription = world.paid, world.subscription
    assert (paid.status, subscription.status) == (S.PARTIALLY_REFUNDED, S.FULFILLED)
    customer = _customer(world)
    support = staff.client("support")
    # The customer's pages
    for order, words in ((paid, "Partly refunded"), (subscription, "Complete")):
        page = customer.get(f"/orders/{order.public_id}/").content.decode()
        assert f'id="order-status">{words}<' in page
        assert f">{words}<" in customer.get("/orders/").content.decode()
    # The console's list, its filter and the order's page: the same words
    orders = support.get(reverse("admin:orders_order_changelist"))
    assert '<td class="field-status">Partly refunded</td>' in orders.content.decode()
    assert '<td class="field-status">Complete</td>' in orders.content.decode()
    status_filter = next(f for f in orders.context["cl"].filter_specs if f.title == "status")
    shown = [choice["display"] for choice in status_filter.choices(orders.context["cl"])]
    assert {"Complete", "Cancelled", "Partly refunded", "Not paid"} <= set(shown)
    assert not {"fulfilled", "canceled", "partially refunded"} & {s.lower() for s in shown}
    page = support.get(reverse("admin:orders_order_change", args=[quote(paid.public_id)]))
    assert re.search(r'<div class="readonly">\s*Partly refunded\s*</div>', page.content.decode())
    # and its history, in the same words, with what the customer reads beside it
    titles = [e.title for e in page.context["timeline"] if e.kind == "order"]
    assert "Paid → Complete" in titles and "Complete → Partly refunded" in titles
    assert not [t for t in titles if "_" in t or "fulfilled" in t]
    received = next(e for e in page.context["timeline"] if e.title == "Awaiting payment → Paid")
    assert "the customer reads “Payment received”" in received.detail
    # and the payments' list
    payments = support.get(reverse("admin:orders_orderpayment_changelist"))
    assert '<td class="field-status">Paid</td>' in payments.content.decode()


def test_one_date_format_on_the_customers_pages_and_the_consoles(world, staff):
    customer = _customer(world).get(f"/orders/{world.paid.public_id}/")
    console = staff.client("billing")
    pages = {
        "customer's order": customer,
        "order page": console.get(
            reverse("admin:orders_order_change", args=[quote(world.paid.public_id)])
        ),
        "order list": console.get(reverse("admin:orders_order_changelist")),
        "charge page": console.get(
            reverse("admin:djstripe_charge_change", args=[quote(_subscription_charge(world).id)])
        ),
        "event list": console.get(reverse("admin:billing_inboundevent_changelist")),
        "payments": console.get(reverse("admin:orders_orderpayment_changelist")),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        text = visible(response)
        assert re.search(MOMENT, text), name
        assert not ISO_LIKE.search(text), (name, ISO_LIKE.search(text))
    # Django's own fields on the order page (created at) read as the timeline's rows do
    order_page = visible(pages["order page"])
    assert len(re.findall(MOMENT, order_page)) >= 5


def test_one_name_for_each_section_on_the_index_and_in_the_breadcrumbs(world, staff):
    client = staff.client("superuser")
    sections = {app["name"]: app for app in client.get(reverse("admin:index")).context["app_list"]}
    # each app is called by the name of its section on the index
    for label in ("orders", "djstripe", "billing"):
        assert apps.get_app_config(label).verbose_name in sections, label
    for name in ("Customers and payments", "Webhooks and events"):
        for model in sections[name]["models"]:
            page = client.get(model["admin_url"])
            assert breadcrumbs(page).startswith(f"Home > {name} > "), (name, model["admin_url"])
    charge = Charge.objects.filter(payment_intent_id=world.paid.payment_intent_id).first()
    page = client.get(reverse("admin:djstripe_charge_change", args=[quote(charge.id)]))
    assert breadcrumbs(page).startswith("Home > Customers and payments > Charges > ")
    for old in ("Stripe objects (mirror)", "Billing (Stripe)", "Djstripe"):
        for response in (page, client.get(reverse("admin:djstripe_webhookendpoint_changelist"))):
            assert old not in response.content.decode()


def test_what_the_pipeline_did_is_said_in_plain_words(world, staff):
    outcomes = " | ".join(InboundEvent.objects.values_list("outcome", flat=True))
    for jargon in ("coalesced", "mirror", "not a payment", "no handler registered",
                   "paid and fulfilled", "already fulfilled"):  # fmt: skip
        assert jargon not in outcomes, jargon
    assert "fetched from Stripe" in outcomes
    assert f"order {world.paid.public_id} paid: complete" in outcomes
    # the payment flagged on the declined order says why in words, amounts formatted
    flagged = OrderPayment.objects.exclude(flag="").get(order=world.declined)
    assert "not paid through the order's own checkout" in flagged.flag_note
    assert "amount ¥3,000 but the order totals ¥1,500" in flagged.flag_note
    page = staff.client("support").get(
        reverse("admin:orders_order_change", args=[quote(world.declined.public_id)])
    )
    assert "not a payment ord_" not in visible(page)
    # and the declined attempt is in the order's history, for the customer too
    detail = _customer(world).get(f"/orders/{world.declined.public_id}/")
    assert "A payment attempt was declined: your card was declined." in visible(detail)


@pytest.mark.parametrize("charge_of", ["paid", "subscription"])
def test_support_adding_a_link_key_is_told_why_it_is_refused(world, staff, charge_of):
    charge = (
        _subscription_charge(world)
        if charge_of == "subscription"
        else Charge.objects.get(payment_intent_id=world.paid.payment_intent_id)
    )
    before = stripe_metadata("charge", charge.id)
    client = staff.client("support")
    page = reverse("admin:djstripe_charge_metadata", args=[quote(charge.id)])
    # When support types order_id into an empty row
    data = form_data(load_form(client, page), {})
    data["key"].append("order_id")
    data["value"].append(world.declined.public_id)
    data["original"].append("")
    response = client.post(page, data)
    # Then the form says why, and nothing reaches Stripe
    text = visible(response)
    assert response.status_code == 200
    assert "order_id is a link key" in text and "needs the link permission" in text
    assert "Billing admin" in text and "appears twice" not in text
    assert stripe_metadata("charge", charge.id) == before


def test_the_charges_list_finds_a_subscription_charges_order_at_one_cost(
    world, staff, stripe_emulator, deliver_event
):
    charge = _subscription_charge(world)
    client = staff.client("support")
    order_url = reverse("admin:orders_order_change", args=[quote(world.subscription.public_id)])
    # The charge's own page finds the order through the references
    page = client.get(reverse("admin:djstripe_charge_change", args=[quote(charge.id)]))
    assert order_url in page.content.decode()
    # and so does its row on the list, though it has no order_id of its own
    changelist = reverse("admin:djstripe_charge_changelist")

    def charges_list():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(changelist)
        row = re.search(rf"<tr>(?:(?!</tr>).)*{charge.id}.*?</tr>", response.content.decode(), re.S)
        return row.group(0), len(queries)

    row, queries = charges_list()
    assert order_url in row
    # When the subscription renews a few times (more charges tied through their invoices)
    for _ in range(3):
        stripe_emulator.renew_subscription(world.subscription.subscription_id)
    deliver_all_events(deliver_event)
    charges = Charge.objects.filter(customer_id=world.subscription.customer_id)
    renewals = len([c for c in charges if not (c.metadata or {}).get("order_id")])
    assert renewals == 4
    # Then the list costs the same, and each renewal's row names the order too
    _, again = charges_list()
    assert again == queries
    listed = client.get(changelist).content.decode()
    assert listed.count(order_url) == renewals
