"""stripe_backfill against the emulator over HTTP: every object, few calls, resumable."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import stripe
from django.core.management import CommandError, call_command
from djstripe import models as djstripe_models

from billing import mirror, stripe_api
from billing.models import BackfillFailure, BackfillPage, BackfillProgress, BackfillRun
from billing.operators import backfill, backfill_pages
from tests.conftest import ROOT, TEST_STRIPE_KEY, subprocess_env, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# The types the seed makes, and the mirror model of each.
SEEDED = {
    "product": djstripe_models.Product,
    "price": djstripe_models.Price,
    "customer": djstripe_models.Customer,
    "subscription": djstripe_models.Subscription,
    "invoice": djstripe_models.Invoice,
    "payment_intent": djstripe_models.PaymentIntent,
    "charge": djstripe_models.Charge,
}


def emulator_ids(object_type: str) -> set[str]:
    params = {"status": "all"} if object_type == "subscription" else None
    return {o.id for o in stripe_api.list_all(object_type=object_type, params=params)}


def assert_mirror_is_the_emulator() -> None:
    for object_type, model in SEEDED.items():
        mirrored = set(model.objects.values_list("id", flat=True))
        assert mirrored == emulator_ids(object_type), object_type


def run_backfill(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("stripe_backfill", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_backfill_mirrors_every_object_with_list_calls_only(stripe_emulator):
    seeded = stripe_emulator.seed(70)["created"]
    stripe_emulator.reset_stats()

    output = run_backfill("--max-rps", "500")
    stats = stripe_emulator.stats()

    assert_mirror_is_the_emulator()
    run = BackfillRun.objects.get()
    assert run.status == BackfillRun.Status.COMPLETED
    counts = backfill.run_counts(run)
    for object_type in SEEDED:
        assert counts[object_type]["created"] == seeded[object_type], object_type
        assert counts[object_type]["errors"] == 0
    # Payment methods and balance transactions came expanded, not fetched one by one.
    assert djstripe_models.PaymentMethod.objects.count() == seeded["payment_method"]
    assert djstripe_models.BalanceTransaction.objects.count() == seeded["balance_transaction"]
    routes = stats["by_route"]
    # List calls only: nothing per object (dj-stripe's product features sync included),
    # and the account looked up once for the whole run.
    per_object = {route: n for route, n in routes.items() if "{" in route}
    assert per_object == {}, per_object
    assert routes.get("GET /v1/account", 0) <= 1, routes
    pages = sum(-(-seeded[t] // 100) for t in SEEDED)  # ceil: one list call per page
    assert routes["GET /v1/charges"] == -(-seeded["charge"] // 100)
    # + the three empty lists (refunds, disputes, sessions) and the account lookup
    assert stats["total"] == pages + 3 + routes.get("GET /v1/account", 0), routes
    assert stats["total"] <= sum(seeded[t] for t in SEEDED) / 100 + len(backfill.TYPES) + 1
    # Each call is counted once, in the type it was made for (all but the run's own account
    # lookup), though the next page, or the next type's first, is fetched meanwhile.
    assert sum(c["api_calls"] for c in counts.values()) == pages + 3
    for object_type in SEEDED:
        list_route = f"GET /v1/{backfill.BY_TYPE[object_type].name}s"
        if list_route in routes:
            assert counts[object_type]["api_calls"] >= routes[list_route], object_type
    assert "Backfill #" in output and "completed" in output


def test_an_empty_type_is_written_without_an_error_or_a_call_it_does_not_need(
    stripe_emulator, caplog, django_assert_num_queries
):
    # Given an account with no refunds and no disputes, whose key dj-stripe does not know yet
    stripe_emulator.reset_stats()

    # When they are backfilled, their pages written here (where the log is read)
    with caplog.at_level(logging.WARNING):
        run_backfill("--types", "refund,dispute", "--writers", "1")

    # Then each empty page is written as it is, without a failed write to retry
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    run = BackfillRun.objects.get()
    assert run.status == BackfillRun.Status.COMPLETED
    counts = backfill.run_counts(run)
    assert {t: (c["created"], c["errors"], c["api_calls"]) for t, c in counts.items()} == {
        "refund": (0, 0, 1),
        "dispute": (0, 0, 1),
    }
    assert BackfillPage.objects.filter(last=True, last_id="").count() == 2
    # One list call per type, and the account once for the run, which dj-stripe now knows.
    assert stripe_emulator.stats()["by_route"] == {
        "GET /v1/account": 1,
        "GET /v1/refunds": 1,
        "GET /v1/disputes": 1,
    }
    assert mirror.owner_account_known(api_key=TEST_STRIPE_KEY)
    # And the one write path writes nothing for nothing, on either database.
    started = mirror.fetch_started()
    with django_assert_num_queries(0):
        assert mirror.objects_write(objects=[], started_at=started) == []


def test_a_run_with_since_asks_for_the_account_only_while_dj_stripe_lacks_it(stripe_emulator):
    seeded = stripe_emulator.seed(5)["created"]
    since = "2000-01-01T00:00:00Z"
    stripe_emulator.reset_stats()

    run_backfill("--types", "product,customer", "--since", since)
    first = stripe_emulator.stats()["by_route"]
    stripe_emulator.reset_stats()
    run_backfill("--types", "product,customer", "--since", since)
    second = stripe_emulator.stats()["by_route"]

    # The first run's one account call stands for dj-stripe's own (and its features lists).
    assert first == {"GET /v1/account": 1, "GET /v1/products": 1, "GET /v1/customers": 1}
    assert second == {"GET /v1/products": 1, "GET /v1/customers": 1}
    assert djstripe_models.Product.objects.count() == seeded["product"]
    assert djstripe_models.Customer.objects.count() == seeded["customer"]
    owners = {row.djstripe_owner_account_id for row in djstripe_models.Customer.objects.all()}
    assert owners == {djstripe_models.APIKey.objects.get().djstripe_owner_account_id} != {None}


# Every table a backfill of the seed writes, parents first.
WRITTEN = [
    djstripe_models.Product, djstripe_models.Price, djstripe_models.PaymentMethod,
    djstripe_models.Customer, djstripe_models.Subscription, djstripe_models.SubscriptionItem,
    djstripe_models.Invoice, djstripe_models.LineItem, djstripe_models.PaymentIntent,
    djstripe_models.BalanceTransaction, djstripe_models.Charge,
]  # fmt: skip


def mirror_rows() -> dict[str, dict[str, dict]]:
    """Every written row, by table and Stripe id, without what differs between two writes
    of the same object (its key, and when it was written)."""
    local = {"djstripe_id", "djstripe_created", "djstripe_updated"}
    tables = {}
    for model in WRITTEN:
        # A key pointing at another row's primary key, as that row's Stripe id.
        by_key = {
            f.attname: dict(f.related_model.objects.values_list("pk", "id"))
            for f in model._meta.concrete_fields
            if f.is_relation and f.target_field.primary_key and hasattr(f.related_model, "id")
        }
        tables[model._meta.db_table] = {
            row["id"]: {
                k: by_key[k].get(v, v) if k in by_key else v
                for k, v in row.items()
                if k not in local
            }
            for row in model.objects.values()
        }
    return tables


def test_backfill_writes_the_rows_dj_stripe_writes(stripe_emulator):
    # Given a business's history in Stripe, backfilled (its new rows sent in batches)
    stripe_emulator.seed(8)
    run_backfill()
    batched = mirror_rows()
    assert all(batched.values())

    # When the same objects, listed the same way, are written by dj-stripe itself, one by one
    for model in reversed(WRITTEN):
        model.objects.all().delete()
    for object_type in [t for t in backfill.TYPES if t in SEEDED]:
        source = backfill.BY_TYPE[object_type]
        page = stripe_api.list_page_data(
            object_type=object_type, params=backfill._list_params(source, None),
            starting_after=None,
        )  # fmt: skip
        assert not page["has_more"]
        for obj in page["data"]:
            SEEDED[object_type].sync_from_stripe_data(stripe_api.as_stripe_object(obj))

    # Then every row says the same, column by column
    stock = mirror_rows()
    for table in batched:
        for stripe_id, row in batched[table].items():
            for column in row:
                assert stock[table][stripe_id][column] == row[column], (table, column)
    assert stock == batched


def test_second_run_finds_everything_unchanged(stripe_emulator):
    seeded = stripe_emulator.seed(30)["created"]
    run_backfill()

    run_backfill()

    counts = backfill.run_counts(BackfillRun.objects.first())
    assert counts["customer"] == {
        **counts["customer"],
        "created": 0,
        "updated": 0,
        "unchanged": seeded["customer"],
    }
    assert counts["charge"]["unchanged"] == seeded["charge"]
    # A change in Stripe since is an update.
    customer = next(iter(stripe_api.list_all(object_type="customer")))
    stripe_api.update(object_type="customer", stripe_id=customer.id, params={"name": "Renamed"})
    run_backfill("--types", "customer")
    assert backfill.run_counts(BackfillRun.objects.first())["customer"]["updated"] == 1
    assert djstripe_models.Customer.objects.get(id=customer.id).stripe_data["name"] == "Renamed"


def test_since_and_types_limit_what_is_listed(stripe_emulator):
    old = stripe_api.create(object_type="customer", params={"email": "old@example.com"})
    time.sleep(1.1)  # Stripe's `created` has a one-second grain
    new = stripe_api.create(object_type="customer", params={"email": "new@example.com"})
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(new.created))

    run_backfill("--types", "customer,charge", "--since", since)

    assert set(djstripe_models.Customer.objects.values_list("id", flat=True)) == {new.id}
    assert BackfillRun.objects.get().types == ["customer", "charge"]
    assert old.id not in set(djstripe_models.Customer.objects.values_list("id", flat=True))


def test_dry_run_reports_and_writes_nothing(stripe_emulator):
    seeded = stripe_emulator.seed(12)["created"]

    output = run_backfill("--dry-run")

    assert "Dry run: nothing was written" in output
    assert djstripe_models.Customer.objects.count() == 0
    assert BackfillRun.objects.count() == 0
    line = next(row for row in output.splitlines() if row.startswith("customer "))
    assert line.split()[1] == str(seeded["customer"])


def test_bad_input_is_refused_and_changes_nothing(stripe_emulator):
    with pytest.raises(CommandError, match="Unknown type"):
        run_backfill("--types", "customers")
    with pytest.raises(CommandError, match="not a date"):
        run_backfill("--since", "last tuesday")
    with pytest.raises(CommandError, match="Nothing to resume"):
        run_backfill("--resume")
    assert BackfillRun.objects.count() == 0


def test_links_orders_and_users_through_metadata(stripe_emulator):
    from django.contrib.auth import get_user_model

    from orders.models import Order

    # Given an order whose payment intent is not mirrored yet, a customer of a known user, and
    # objects whose link keys point at nothing
    user = get_user_model().objects.create_user(username="linked", password="x" * 20)
    customer = stripe_api.create(
        object_type="customer", params={"metadata": {"user_id": str(user.pk)}}
    )
    order = Order.objects.create(
        user=user, request_token="t", mode="payment", currency="usd", amount_total=1500
    )
    intent = stripe_api.create(
        object_type="payment_intent",
        params={"amount": 1500, "currency": "usd", "payment_method": "pm_card_visa",
                "confirm": True, "customer": customer.id,
                "metadata": {"order_id": order.public_id, "user_id": str(user.pk)}},
    )  # fmt: skip
    stripe_api.create(
        object_type="payment_intent",
        params={"amount": 900, "currency": "usd", "metadata": {"order_id": "ord_nowhere"}},
    )

    run_backfill("--types", "customer", "payment_intent", "charge")

    order.refresh_from_db()
    assert order.payment_intent_id == intent.id
    assert djstripe_models.Customer.objects.get(id=customer.id).subscriber == user
    counts = backfill.run_counts(BackfillRun.objects.get())
    assert counts["customer"]["linked"] == 1
    assert counts["payment_intent"]["linked"] == 1
    assert counts["payment_intent"]["unlinked"] == 1
    assert counts["charge"]["linked"] == 1  # the charge copied its intent's keys


# --- Interruptions --------------------------------------------------------------------------


def backfill_process(*args: str) -> subprocess.Popen:
    from django.conf import settings

    env = subprocess_env(
        DJANGO_DEBUG="true",
        STRIPE_API_BASE=settings.STRIPE_API_BASE,
        STRIPE_SECRET_KEY=TEST_STRIPE_KEY,
        PYTHONUNBUFFERED="1",
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "stripe_backfill", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def pages_written() -> int:
    return sum(BackfillProgress.objects.values_list("pages", flat=True))


def test_killed_mid_run_then_resumed_leaves_exactly_the_emulators_objects(stripe_emulator):
    seeded = stripe_emulator.seed(200)["created"]
    stripe_emulator.set_faults(latency=0.02)
    proc = backfill_process("--max-rps", "200")
    try:
        # When the process is killed outright after a few pages, in the middle of the run
        wait_for(lambda: pages_written() >= 4 or proc.poll() is not None, timeout=120)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    run = BackfillRun.objects.get()
    assert run.status == BackfillRun.Status.RUNNING  # killed: nobody recorded an ending
    assert not all(run.progress.values_list("done", flat=True)), "killed too late"
    stripe_emulator.clear_faults()

    # Then --resume goes on from the checkpoints
    output = run_backfill("--resume")

    run.refresh_from_db()
    assert run.status == BackfillRun.Status.COMPLETED
    assert_mirror_is_the_emulator()
    counts = backfill.run_counts(run)
    for object_type in SEEDED:
        # Every object counted once, across both processes: no page written twice, none lost.
        assert counts[object_type]["created"] == seeded[object_type], object_type
        assert counts[object_type]["updated"] + counts[object_type]["unchanged"] == 0
    assert f"Backfill #{run.pk} completed" in output


def test_pages_written_out_of_order_move_the_checkpoint_only_when_joined(stripe_emulator):

    # Given two pages of customers, as parallel writers may commit them: the second first
    for n in range(4):
        stripe_api.create(object_type="customer", params={"email": f"o{n}@example.com"})
    objects = [stripe_api.as_dict(c) for c in stripe_api.list_all(object_type="customer")]
    first, second = objects[:2], objects[2:]
    run = backfill.backfill_start(types=["customer"], since=None, max_rps=20)
    progress = run.progress.get()

    def write(data, after, last):
        return backfill_pages._page_write(
            run=run,
            progress=progress,
            after=after,
            page=backfill_pages.Page(data=data, has_more=not last, api_calls=1),
            started=mirror.fetch_started(),
            last=last,
        )

    written = write(second, first[-1]["id"], last=True)

    # Then the checkpoint stays before the gap (a resumed run lists the first page again)
    assert (written.cursor, written.done, written.created) == ("", False, 2)

    # When the first page is written, the checkpoint moves over both, and the type is done
    written = write(first, None, last=False)
    assert (written.cursor, written.done, written.created) == (second[-1]["id"], True, 4)
    assert written.pages == 2

    # And a page met again (a resumed run listing past the gap) is recognised, not recounted
    assert write(second, first[-1]["id"], last=True) is None
    progress.refresh_from_db()
    assert (progress.created, progress.unchanged, progress.pages) == (4, 0, 2)
    assert djstripe_models.Customer.objects.count() == 4


def test_pages_are_written_by_writer_processes_on_postgresql(stripe_emulator):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    seeded = stripe_emulator.seed(150)["created"]

    with CaptureQueriesContext(connection) as queries:
        run_backfill("--max-rps", "500", "--writers", "2")

    assert_mirror_is_the_emulator()
    counts = backfill.run_counts(BackfillRun.objects.get())
    for object_type in SEEDED:
        assert counts[object_type]["created"] == seeded[object_type], object_type
    assert BackfillPage.objects.filter(progress__object_type="customer").count() == 2
    # PostgreSQL: this process lists and coordinates, the writers write the rows; SQLite
    # (one writer at a time anyway) writes them here.
    written_here = [
        q["sql"]
        for q in queries
        if "djstripe_customer" in q["sql"] and q["sql"].startswith(("COPY", "INSERT"))
    ]
    assert bool(written_here) == (connection.vendor != "postgresql")


def test_writers_must_be_at_least_one(stripe_emulator):
    with pytest.raises(CommandError, match="--writers must be at least 1"):
        run_backfill("--writers", "0")


def test_ctrl_c_exits_cleanly_with_how_to_resume(stripe_emulator):
    stripe_emulator.seed(100)
    stripe_emulator.set_faults(latency=0.02)
    proc = backfill_process("--max-rps", "200")
    wait_for(lambda: pages_written() >= 2 or proc.poll() is not None, timeout=120)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert "resume with: manage.py stripe_backfill --resume" in err
    assert BackfillRun.objects.get().status == BackfillRun.Status.INTERRUPTED
    stripe_emulator.clear_faults()
    run_backfill("--resume")
    assert_mirror_is_the_emulator()


# --- The API's limits -----------------------------------------------------------------------


def test_completes_under_a_25_per_second_limit_with_429s(stripe_emulator):
    seeded = stripe_emulator.seed(80)["created"]
    # Given test mode's 25 requests/s, shared with the live shop, which keeps using them
    stripe_emulator.set_faults(rate_limit=25)
    stripe_emulator.reset_stats()
    shop = stripe.StripeClient(
        TEST_STRIPE_KEY, base_addresses={"api": stripe_emulator.url}, max_network_retries=0
    )
    stop = threading.Event()

    def live_traffic():
        # 24 requests at the start of every second: one slot a second is left for the rest
        while not stop.is_set():
            second = time.monotonic()
            for _ in range(24):
                with contextlib.suppress(stripe.RateLimitError):
                    shop.v1.customers.list(params={"limit": 1})
            stop.wait(max(0.0, second + 1.0 - time.monotonic()))

    traffic = threading.Thread(target=live_traffic)
    traffic.start()
    try:
        run_backfill("--max-rps", "25")
    finally:
        stop.set()
        traffic.join(10)

    assert stripe_emulator.stats()["by_status"].get("429", 0) > 0
    assert_mirror_is_the_emulator()
    counts = backfill.run_counts(BackfillRun.objects.get())
    assert counts["charge"]["created"] == seeded["charge"]
    assert sum(c["errors"] for c in counts.values()) == 0


def test_server_errors_are_retried_and_the_run_completes(stripe_emulator):
    stripe_emulator.seed(20)
    stripe_emulator.reset_stats()
    # every third request answers 500 (random errors made this test fail now and then: a
    # request could fail more times in a row than the run retries)
    stripe_emulator.set_faults(error_every=3)

    run_backfill("--max-rps", "500")

    statuses = stripe_emulator.stats()["by_status"]
    assert statuses["500"] == (statuses["500"] + statuses["200"]) // 3
    stripe_emulator.clear_faults()
    assert_mirror_is_the_emulator()


def test_an_api_that_stays_down_stops_the_run_resumably(stripe_emulator, monkeypatch):
    stripe_emulator.seed(10)
    stripe_emulator.set_faults(error_rate=1.0)
    monkeypatch.setattr(backfill, "BACKFILL_RETRIES", 1)  # fail fast: the policy is tested apart

    with pytest.raises(CommandError, match="resume with"):
        run_backfill("--max-rps", "500")

    assert BackfillRun.objects.get().status == BackfillRun.Status.FAILED
    stripe_emulator.clear_faults()
    run_backfill("--resume")
    assert_mirror_is_the_emulator()
    assert not BackfillFailure.objects.exists()


def test_an_object_that_cannot_be_written_is_recorded_listed_and_fails_the_run(
    stripe_emulator,
):

    # Given a page of customers one of which dj-stripe cannot store (a broken `created`)
    for n in range(3):
        stripe_api.create(object_type="customer", params={"email": f"p{n}@example.com"})
    page = [stripe_api.as_dict(c) for c in stripe_api.list_all(object_type="customer")]
    broken = {**page[1], "created": "not a time"}
    run = backfill.backfill_start(types=["customer"], since=None, max_rps=20)
    progress = run.progress.get()

    # When the page is written
    progress = backfill_pages._page_write(
        run=run,
        progress=progress,
        after=None,
        page=backfill_pages.Page(data=[page[0], broken, page[2]], has_more=False, api_calls=1),
        started=mirror.fetch_started(),
        last=True,
    )

    # Then the others are written, the broken one recorded, the checkpoint moved past it
    assert set(djstripe_models.Customer.objects.values_list("id", flat=True)) == {
        page[0]["id"],
        page[2]["id"],
    }
    assert (progress.created, progress.errors, progress.cursor) == (2, 1, page[2]["id"])
    failure = BackfillFailure.objects.get()
    assert failure.stripe_id == broken["id"]
    # and the command, finishing the run, lists it and exits non-zero
    from io import StringIO

    err = StringIO()
    with pytest.raises(CommandError, match="1 object\\(s\\) failed"):
        call_command("stripe_backfill", "--resume", stdout=StringIO(), stderr=err)
    assert broken["id"] in err.getvalue()
    assert BackfillRun.objects.get().status == BackfillRun.Status.COMPLETED
