"""What the console must never give away or let happen, probed as an attacker with a staff
account would: secrets read back through list filters or forms, objects moved onto another
customer's order, two saves of one form racing, Stripe called without limit."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse
from djstripe.models import Customer, PaymentIntent

from billing import stripe_api
from billing.models import AuditEntry, ResyncJob
from tests.admin.conftest import PASSWORD, buy, deliver_all_events, price_id
from tests.admin.test_console_metadata import (
    form_data,
    load_form,
    metadata_page,
    paid_charge,
    post_form,
    stripe_metadata,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("who", "url"),
    [
        (
            "billing",
            "admin:djstripe_webhookendpoint_changelist",
        ),
        ("support", "admin:djstripe_paymentintent_changelist"),
    ],
)
def test_list_filters_take_only_the_lists_own_lookups(world, staff, who, url):
    client = staff.client(who)
    changelist = reverse(url)
    probes = {
        "admin:djstripe_webhookendpoint_changelist": [
            "secret__gte=whsec_",
            "secret__startswith=whsec_",
            "djstripe_uuid__gt=0",
        ],
        "admin:djstripe_paymentintent_changelist": [
            "stripe_data__client_secret__startswith=pi_",
            "stripe_data__metadata__note__startswith=sk_live_",
            "metadata__order_id__startswith=ord_",
        ],
    }[url]
    for probe in probes:
        # refused outright: the answer tells nothing about the value
        assert client.get(f"{changelist}?{probe}").status_code == 400, probe
    # the list's own filters still work
    if url == "admin:djstripe_paymentintent_changelist":
        assert client.get(f"{changelist}?status=succeeded").status_code == 200
    assert PaymentIntent.objects.exists()


def test_field_filters_of_the_inbox_still_work(world, staff):
    client = staff.client("billing")
    events = reverse("admin:billing_inboundevent_changelist")
    assert client.get(f"{events}?status__exact=processed").status_code == 200
    assert client.get(f"{events}?livemode__exact=0").status_code == 200
    assert client.get(f"{events}?payload__id__startswith=evt_").status_code == 400


# --- An object stays on its own order ---------------------------------------------------------


@pytest.fixture
def other_customer_order(world, stripe_emulator, deliver_event):
    """Customer B's paid order, beside customer A's (the world's shopper)."""
    b = get_user_model().objects.create_user("other", email="other@example.com", password=PASSWORD)
    order = buy(b, price_id("usd"), card="4242424242424242", emulator=stripe_emulator)
    deliver_all_events(deliver_event)
    order.refresh_from_db()
    assert order.status == "fulfilled"
    return order


def test_a_charge_cannot_be_pointed_at_another_customers_order(world, staff, other_customer_order):
    client = staff.client("billing")
    charge = paid_charge(world)
    page = metadata_page(charge)
    # Removing user_id alone is allowed (the object still belongs to one user) ...
    removed = post_form(client, page, load_form(client, page), {"user_id": None}, confirm=True)
    assert removed.status_code == 302
    assert "user_id" not in stripe_metadata("charge", charge.id)
    # ... but order_id cannot then name customer B's order: the charge's customer and its
    # order are A's
    moved = post_form(
        client, page, load_form(client, page), {"order_id": other_customer_order.public_id},
        confirm=True,
    )  # fmt: skip
    assert moved.status_code == 200
    assert "more than one user" in moved.content.decode()
    assert stripe_metadata("charge", charge.id)["order_id"] == world.paid.public_id


def test_a_refund_changes_only_the_order_whose_payment_it_is(
    world, staff, other_customer_order, deliver_event
):
    charge = paid_charge(world)
    # Someone with the API key points A's charge at B's order, without user_id ...
    stripe_api.update(
        object_type="charge",
        stripe_id=charge.id,
        params={"metadata": {"user_id": "", "order_id": other_customer_order.public_id}},
    )
    # ... and the rest of A's charge is refunded
    stripe_api.create(object_type="refund", params={"charge": charge.id})
    deliver_all_events(deliver_event)
    a, b = world.paid, other_customer_order
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.status == "refunded" and a.amount_refunded == a.amount_total
    assert b.status == "fulfilled" and b.amount_refunded == 0


# --- Two saves of one form ----------------------------------------------------------------------


def test_two_saves_at_the_same_moment_one_wins_the_other_is_told(world, staff):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent requests each with their own connection: PostgreSQL")
    charge = paid_charge(world)
    page = metadata_page(charge)
    people = {"support": staff.client("support"), "billing": staff.client("billing")}
    forms = {who: load_form(client, page) for who, client in people.items()}
    barrier = threading.Barrier(len(people))
    answers: dict[str, object] = {}

    def save(who: str) -> None:
        try:
            data = form_data(forms[who], {"note": f"set by {who}"})
            barrier.wait()
            answers[who] = people[who].post(page, data)
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=(who,)) for who in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    saved = [who for who, answer in answers.items() if answer.status_code == 302]
    told = [who for who, answer in answers.items() if answer.status_code == 200]
    assert len(saved) == 1 and len(told) == 1, {w: a.status_code for w, a in answers.items()}
    assert "changed in Stripe since this form was loaded" in answers[told[0]].content.decode()
    assert stripe_metadata("charge", charge.id)["note"] == f"set by {saved[0]}"
    results = AuditEntry.objects.filter(stripe_id=charge.id, action="metadata_update",
                                        actor__username__in=list(people))  # fmt: skip
    assert sorted(results.values_list("result", flat=True)) == ["done", "refused"]


# --- Stripe calls from the console, limited ----------------------------------------------------


def test_each_person_has_a_minutes_share_of_stripe_calls(world, staff, settings, stripe_emulator):
    settings.CONSOLE_STRIPE_CALLS_PER_MINUTE = 3
    charge = paid_charge(world)
    resync_url = reverse("admin:djstripe_charge_resync", args=[charge.id])
    support = staff.client("support")
    stripe_emulator.reset_stats()
    for _ in range(3):
        assert support.post(resync_url).status_code == 302
    refused = support.post(resync_url, follow=True)
    assert "try again in" in refused.content.decode()
    # the fourth made no call: three fetches of the charge
    assert stripe_emulator.stats()["by_route"].get("GET /v1/charges/{id}") == 3
    # the metadata form's load is one of them too; another person has their own share
    assert "try again in" in support.get(metadata_page(charge), follow=True).content.decode()
    assert staff.client("billing").get(metadata_page(charge)).status_code == 200


def test_resync_jobs_are_capped_in_size_and_in_number(world, staff, settings, stripe_emulator):
    from billing.operators import backfill

    for n in range(22):
        stripe_api.create(object_type="customer", params={"email": f"c{n}@example.com"})
    backfill.backfill_run(run=backfill.backfill_start(types=["customer"], since=None, max_rps=100))
    pks = list(Customer.objects.values_list("pk", flat=True))
    assert len(pks) > 21
    changelist = reverse("admin:djstripe_customer_changelist")
    action = {"action": "resync_selected", "_selected_action": pks}
    client = staff.client("support")
    settings.CONSOLE_RESYNC_JOB_MAX_OBJECTS = 21
    before = ResyncJob.objects.count()
    too_many = client.post(changelist, action, follow=True).content.decode()
    assert "at most 21 objects" in too_many and ResyncJob.objects.count() == before
    settings.CONSOLE_RESYNC_JOB_MAX_OBJECTS = 1000
    settings.CONSOLE_RESYNC_JOBS_AT_ONCE = 1
    ResyncJob.objects.create(object_type="customer", stripe_ids=["cus_x"], total=1)  # queued
    busy = client.post(changelist, action, follow=True).content.decode()
    assert "queued or running" in busy and ResyncJob.objects.count() == before + 1
    ResyncJob.objects.filter(status="queued").update(status="finished")
    client.post(changelist, action)
    assert ResyncJob.objects.count() == before + 2


def test_the_api_versions_page_lists_endpoints_from_stripe_once(world, staff, stripe_emulator):
    client = staff.client("billing")
    page = reverse("billing_api_versions")
    stripe_emulator.reset_stats()
    for _ in range(3):
        assert client.get(page).status_code == 200
    assert stripe_emulator.stats()["by_route"].get("GET /v1/webhook_endpoints") == 1
    assert client.get(page + "?refresh=1").status_code == 200
    assert stripe_emulator.stats()["by_route"].get("GET /v1/webhook_endpoints") == 2
