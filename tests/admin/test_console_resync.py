"""Resync from Stripe: one object from its page, a few from a changelist, many as a background
job whose progress the admin shows; what changed is shown and audited; Stripe's errors become
messages a person can act on."""

from __future__ import annotations

import html
import re
import time

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import quote
from django.test import Client
from django.urls import reverse
from djstripe.models import Customer

from billing import mirror, stripe_api
from billing.console import resync
from billing.models import AuditEntry, ObjectSync, ResyncJob
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def page_url(name: str, key) -> str:
    return reverse(f"admin:{name}", args=[quote(str(key))])


def text_of(response) -> str:
    return html.unescape(response.content.decode())


def mirrored_customers(count: int) -> list[str]:
    """Customers created in Stripe and mirrored through the one write path."""
    started = mirror.fetch_started()
    created = [
        stripe_api.create(object_type="customer", params={"email": f"c{i}@example.com"})
        for i in range(count)
    ]
    mirror.objects_write(objects=created, started_at=started)
    return [c.id for c in created]


def test_resync_shows_what_changed(world, staff):
    customer_id = world.paid.customer_id
    # Given the customer changed in Stripe and the mirror has not heard (no event delivered)
    stripe_api.update(
        object_type="customer",
        stripe_id=customer_id,
        params={"name": "Renamed Shopper", "metadata": {"vip": "yes"}},
    )
    before = Customer.objects.get(id=customer_id).stripe_data
    client = staff.client("support")

    # When support presses Resync from Stripe on the customer's page
    response = client.post(page_url("djstripe_customer_resync", customer_id), follow=True)

    # Then the page says what changed, field by field, before and after
    text = text_of(response)
    assert "2 field(s) changed" in text, re.findall(r"Resynced[^<]*", text)
    diff = re.findall(
        r"<tr><td>([^<]+)</td><td class=\"before\">([^<]*)</td><td class=\"after\">([^<]*)</td></tr>",
        response.content.decode(),
    )
    assert ("name", html.escape(before.get("name") or "-"), "Renamed Shopper") in diff
    assert ("metadata.vip", "-", "yes") in diff
    # and the mirror, the guard's record, the audit and the admin log agree
    row = Customer.objects.get(id=customer_id)
    assert row.stripe_data["name"] == "Renamed Shopper" and row.metadata["vip"] == "yes"
    assert ObjectSync.objects.get(stripe_id=customer_id).synced_at is not None
    entry = AuditEntry.objects.get(stripe_id=customer_id, actor=staff.support, action="resync")
    assert entry.result == AuditEntry.Result.DONE
    assert entry.before == {"name": before.get("name"), "metadata.vip": None}
    assert entry.after == {"name": "Renamed Shopper", "metadata.vip": "yes"}
    assert LogEntry.objects.filter(user=staff.support, object_id=str(row.pk)).exists()


def test_resync_of_an_unchanged_object_says_so(world, staff):
    client = staff.client("support")
    response = client.post(
        page_url("djstripe_price_resync", world.paid.items.get().price_id), follow=True
    )
    assert "the mirror was already up to date" in text_of(response)
    assert AuditEntry.objects.get(actor=staff.support).result == AuditEntry.Result.UNCHANGED


def test_resync_of_an_object_deleted_in_stripe_marks_it_deleted(world, staff):
    customer = stripe_api.create(object_type="customer", params={"email": "gone@example.com"})
    mirror.object_write(data=customer, started_at=mirror.fetch_started())
    stripe_api.delete(object_type="customer", stripe_id=customer.id)

    response = staff.client("support").post(
        page_url("djstripe_customer_resync", customer.id), follow=True
    )

    assert "no longer exists in Stripe" in text_of(response)
    assert Customer.objects.get(id=customer.id).stripe_data.get("deleted") is True
    assert "deleted in Stripe" in text_of(response)


def test_rate_limited_resync_says_to_wait(world, staff, stripe_emulator, settings, monkeypatch):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    monkeypatch.setattr(stripe_api.policy, "RETRY_BASE_DELAY", 0.01)
    client = staff.client("support")
    url = page_url("djstripe_customer_resync", world.paid.customer_id)
    # Given Stripe allows one request a second and one was just made
    stripe_emulator.set_faults(rate_limit=1)
    stripe_api.retrieve(object_type="customer", stripe_id=world.paid.customer_id)

    response = client.post(url, follow=True)

    stripe_emulator.clear_faults()
    assert "Stripe is rate limiting this account: wait a minute and try again." in text_of(response)
    entry = AuditEntry.objects.get(actor=staff.support)
    assert entry.result == AuditEntry.Result.FAILED and "rate limiting" in entry.message


def test_refused_key_says_who_can_fix_it_and_shows_no_key(world, staff, settings):
    settings.STRIPE_SECRET_KEY = "sk_live_notthisaccount000000009999"
    response = staff.client("support").post(
        page_url("djstripe_customer_resync", world.paid.customer_id), follow=True
    )
    text = text_of(response)
    assert "ask an operator to check STRIPE_SECRET_KEY" in text
    assert "notthisaccount" not in text


def test_changelist_action_resyncs_a_few_inline(world, staff):
    ids = mirrored_customers(3)
    client = staff.client("support")
    rows = Customer.objects.filter(id__in=ids)
    response = client.post(
        reverse("admin:djstripe_customer_changelist"),
        {"action": "resync_selected", "_selected_action": [r.pk for r in rows]},
        follow=True,
    )
    assert "Resynced 3 customers from Stripe" in text_of(response)
    assert AuditEntry.objects.filter(actor=staff.support, stripe_id__in=ids).count() == 3
    assert not ResyncJob.objects.filter(created_by=staff.support).exists()


def test_more_than_twenty_run_as_a_job_with_progress(world, staff):
    ids = mirrored_customers(resync.RESYNC_INLINE_LIMIT + 5)
    stripe_api.update(object_type="customer", stripe_id=ids[0], params={"name": "Changed"})
    client = staff.client("support")

    # When support selects them all (select across) and resyncs
    response = client.post(
        reverse("admin:djstripe_customer_changelist"),
        {"action": "resync_selected", "select_across": "1", "index": "0",
         "_selected_action": [Customer.objects.get(id=ids[0]).pk]},
    )  # fmt: skip

    # Then a job took them (eager here: no broker in this test), and its page shows progress
    job = ResyncJob.objects.get(created_by=staff.support)
    assert response.status_code == 302
    assert response["Location"] == page_url("billing_resyncjob_change", job.pk)
    assert job.status == ResyncJob.Status.FINISHED and job.total >= len(ids)
    assert job.done == job.total and job.changed >= 1 and job.failed == 0
    page = text_of(client.get(response["Location"]))
    assert f"{job.total} of {job.total} customer objects resynced" in page
    assert "Changed" in page  # the diff of the changed one, in the job's entries
    assert job.entries.count() == job.total


def test_a_job_stops_when_stripe_refuses_the_key(world, staff, settings):
    ids = mirrored_customers(resync.RESYNC_INLINE_LIMIT + 1)
    settings.STRIPE_SECRET_KEY = "sk_live_refused0000000000000000000"
    job = resync.resync_job_start(actor=staff.support, object_type="customer", stripe_ids=ids)
    job.refresh_from_db()
    assert job.status == ResyncJob.Status.FAILED
    assert job.done == job.failed == 1
    assert "STRIPE_SECRET_KEY" in job.error


@pytest.mark.worker
def test_a_job_runs_on_a_real_worker_and_its_page_shows_progress(
    world, staff, stripe_emulator, celery_worker_process
):
    ids = mirrored_customers(resync.RESYNC_INLINE_LIMIT + 10)
    # Each Stripe request takes a while, so progress can be seen between start and finish
    stripe_emulator.set_faults(latency=0.15)
    client = Client()
    client.force_login(staff.support)
    job = resync.resync_job_start(actor=staff.support, object_type="customer", stripe_ids=ids)
    url = page_url("billing_resyncjob_change", job.pk)

    seen = set()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        page = client.get(url).content.decode()
        done = int(re.search(r"(\d+) of \d+ customer objects resynced", page).group(1))
        seen.add(done)
        if "<strong>Finished</strong>" in page:
            break
        time.sleep(0.2)
    stripe_emulator.clear_faults()
    job.refresh_from_db()
    assert job.status == ResyncJob.Status.FINISHED and job.done == len(ids)
    assert any(0 < n < len(ids) for n in seen), seen  # seen part-way
    assert 'http-equiv="refresh"' not in client.get(url).content.decode()
    wait_for(lambda: job.entries.count() == len(ids))
