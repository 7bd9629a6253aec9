"""The support console at scale: every console page at 1,000 and at 100,000 orders.

1. A sample shop is made the production way in a PostgreSQL database of its own, migrated:
   the demo catalog in fakestripe; customers buying through the checkout service and paying
   on the emulator's Checkout; every event delivered, signed, through the real intake and
   processed. Per customer: paid, partly refunded, refunded in full, a subscription renewed
   twice, declined then paid, a zero-decimal order, an unpaid one, and a Payment Link session
   naming an order (a flagged payment); then the console used (a resync, a metadata edit).
   The sample is kept between runs (its name carries a hash of the migrations).
2. For each size, a database is copied from the sample (``CREATE DATABASE … TEMPLATE``) and
   the sample's rows are cloned into it until it holds that many orders: each clone's Stripe
   ids, order ids, usernames, emails and invoice numbers renamed, keys shifted, times spread
   over two years; one ``COPY`` per table, then ``VACUUM ANALYZE``.
3. Each database is served by gunicorn (DEBUG off, the project's ``gunicorn.conf.py``), and
   each page is requested ``--requests`` times per size, the sizes taking turns (same minutes),
   as a superuser; median and max.
4. Each page is also opened once per size in a Django process with the test client, its SQL
   queries counted and each ``EXPLAIN ANALYZE``d: the most rows any scan of the page looked at
   (kept or filtered out), and any sequential scan of a table holding more than 10,000 rows.

Prints one line per page (median and max per size, growth of the median, queries and rows read
per size, big-table sequential scans at the largest size) and ``worst growth X.XX (page)``.

Usage: .venv/bin/python bench/console_scale.py [--orders 1000 --orders 100000] [--requests 5]
       [--keep] (keep the size databases; the next run with --keep reuses them)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import Processes, free_port, wait_until  # noqa: E402

PG = "postgres://postgres@127.0.0.1:5432"
SECRET_KEY = "bench-console-" + "x" * 40
SHOPPERS = 5
BIG_TABLE = 10_000
SPAN = timedelta(days=730)
PASSWORD = "a-long-bench-password-1"


def _dsn(name: str) -> str:
    return f"{PG}/{name}"


def _psql(sql: str, db: str = "postgres") -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-qAtc", sql],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _db_exists(name: str) -> bool:
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qAtc",
         f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return out.stdout.strip() == "1"


def _env(db: str, stripe_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_SECRET_KEY=SECRET_KEY,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,testserver",
        DATABASE_URL=_dsn(db),
        STRIPE_API_BASE=stripe_url,
        STRIPE_SECRET_KEY="sk_test_benchconsolescale000000000",
        SITE_URL="http://127.0.0.1:8000",
        DJANGO_LOG_LEVEL="WARNING",
        STRIPE_LOG_LEVEL="ERROR",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


# --- 1. The sample shop, made the production way ------------------------------------------


SAMPLE_VERSION = "1"  # bump when the sample's recipe changes


def sample_name() -> str:
    digest = hashlib.sha256(SAMPLE_VERSION.encode())
    for path in sorted(ROOT.glob("*/migrations/0*.py")):
        digest.update(path.read_bytes())
    return f"console_scale_sample_{digest.hexdigest()[:10]}"


def sample_build(name: str, stripe_url: str) -> None:
    """Run in a child process (``--_sample``): Django on the new database, fakestripe."""
    if _db_exists(name):
        return
    _psql(f"CREATE DATABASE {name}_wip")
    subprocess.run(
        [sys.executable, __file__, "--_sample", f"{name}_wip"],
        env=_env(f"{name}_wip", stripe_url, DJANGO_DEBUG="true"),
        check=True,
        cwd=ROOT,
    )
    _psql(f"ALTER DATABASE {name}_wip RENAME TO {name}")


def _sample_in_process() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from django.contrib.auth import get_user_model
    from django.test import Client
    from djstripe.models import Charge, Price

    from billing import stripe_api
    from billing.console import metadata_edit, resync
    from billing.models import InboundEvent
    from billing.webhooks import endpoints
    from fakestripe.client import FakeStripeClient
    from orders.demo import demo_catalog_seed
    from orders.models import Order
    from orders.services import catalog_sync, order_checkout_start

    fake = FakeStripeClient(os.environ["STRIPE_API_BASE"])
    demo_catalog_seed()
    catalog_sync()
    endpoint = endpoints.webhook_endpoint_create(base_url="http://127.0.0.1:9")
    client = Client()

    def deliver() -> None:
        stored = set(InboundEvent.objects.values_list("id", flat=True))
        emitted = [stripe_api.as_dict(e) for e in stripe_api.list_all(object_type="event")]
        for event in reversed(emitted):
            if event["id"] in stored:
                continue
            body = json.dumps(event)
            header = stripe_api.signature_header(
                payload=body, secret=endpoint.secret, timestamp=int(time.time())
            )
            response = client.post(
                f"/stripe/webhook/{endpoint.djstripe_uuid}/",
                data=body,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=header,
            )
            assert response.status_code == 200, (event["id"], response.status_code)

    def price(currency: str, interval: str | None = None) -> str:
        for row in Price.objects.filter(currency=currency, active=True):
            data = row.stripe_data
            if (data.get("recurring") or {}).get("interval") == interval and data.get(
                "unit_amount"
            ) is not None:
                return row.id
        raise LookupError((currency, interval))

    def buy(user, price_id: str, *cards: str) -> Order:
        step = order_checkout_start(
            user=user, price_id=price_id, quantity=1, request_token=secrets.token_urlsafe(12)
        )
        for card in cards:
            try:
                fake.complete_checkout(step.order.checkout_session_id, card=card)
            except urllib.error.HTTPError as error:
                assert error.code == 402, error.payload  # a decline
        return Order.objects.get(pk=step.order.pk)

    ok, declined = "4242424242424242", "4000000000000002"
    usd, monthly, jpy = price("usd"), price("usd", "month"), price("jpy")
    users = get_user_model().objects
    for n in range(SHOPPERS):
        user = users.create_user(f"shopper{n}", email=f"shopper{n}@example.com", password=PASSWORD)
        buy(user, usd, ok)
        for amount in (500, None):  # partly, then in full
            order = buy(user, usd, ok)
            session = stripe_api.retrieve(
                object_type="checkout.session", stripe_id=order.checkout_session_id
            )
            params = {"payment_intent": session.payment_intent}
            stripe_api.create(
                object_type="refund", params={**params, **({"amount": amount} if amount else {})}
            )
        member = buy(user, monthly, ok)
        deliver()
        member.refresh_from_db()
        for _ in range(2):
            fake.renew_subscription(member.subscription_id)
        buy(user, jpy, declined, ok)
        buy(user, jpy, ok)
        unpaid = buy(user, usd)
        stray = stripe_api.create(object_type="checkout.session", params={
            "mode": "payment", "line_items": [{"price": usd, "quantity": 2}],
            "success_url": "https://example.com/ok", "client_reference_id": unpaid.public_id,
        })  # fmt: skip
        fake.complete_checkout(stray.id)
        deliver()
    operator = users.create_superuser("operator", "operator@example.com", PASSWORD)
    paid = Order.objects.filter(status=Order.Status.FULFILLED).order_by("pk").first()
    resync.object_resync(
        actor=operator, object_type="payment_intent", stripe_id=paid.payment_intent_id
    )
    charge = Charge.objects.filter(payment_intent_id=paid.payment_intent_id).first()
    metadata_edit.metadata_update(actor=operator, object_type="charge", stripe_id=charge.id,
                             expected=charge.metadata or {}, changes={"note": "seeded"},
                             request_token="seed")  # fmt: skip
    deliver()


# --- 2. Cloning the sample into a shop of a given size --------------------------------------

# Tables whose rows are the shop's (cloned); the catalog, endpoints, staff and Django's own
# tables are shared by every clone.
CLONED = (
    "auth_user", "orders_order", "orders_orderitem", "orders_orderhistory", "orders_orderpayment",
    "orders_orderreference", "orders_customersettings", "djstripe_customer", "djstripe_session",
    "djstripe_paymentintent", "djstripe_charge", "djstripe_refund", "djstripe_subscription",
    "djstripe_subscriptionitem", "djstripe_invoice", "djstripe_lineitem", "djstripe_invoiceitem",
    "djstripe_paymentmethod", "djstripe_balancetransaction", "billing_inboundevent",
    "billing_webhookdelivery", "billing_objectsync", "billing_auditentry",
)  # fmt: skip
_SHARED_TYPES = "('product', 'price', 'webhook_endpoint')"
ROW_FILTER = {
    "auth_user": "NOT is_staff",
    "billing_objectsync": f"object_type NOT IN {_SHARED_TYPES}",
    "billing_inboundevent": f"object_type NOT IN {_SHARED_TYPES}",
    "billing_webhookdelivery": "event_id IN (SELECT id FROM billing_inboundevent"
    f" WHERE object_type NOT IN {_SHARED_TYPES})",
}
# Tokens renamed per clone: Stripe ids (not the shared catalog's, account's or endpoints'),
# order ids, the shoppers' names (usernames and emails) and invoice numbers' prefixes.
TOKEN = re.compile(
    r"(?<![0-9A-Za-z])(?:"
    r"(?P<stripe>(?!(?:prod|price|acct|we|whsec|sk|pk|rk|ord)_)[a-z]{2,6}_(?:test_|live_)?[0-9A-Za-z]{8,})"
    r"|(?P<order>ord_[0-9a-f]{20})"
    r"|(?P<shopper>shopper\d+)"
    r"|(?P<invoice>[0-9A-Z]{8}(?=-\d{4}(?!\d)))"
    r")(?![0-9A-Za-z])"
)


@dataclass
class Column:
    name: str
    kind: str  # "text", "int", "time", "uuid", "other"
    references: str | None = None  # the cloned table an integer key points at


def _columns(cur, table: str, fks: dict[tuple[str, str], str]) -> list[Column]:
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = %s ORDER BY ordinal_position",
        [table],
    )
    columns = []
    for name, data_type in cur.fetchall():
        if data_type in ("character varying", "text", "jsonb", "json"):
            kind = "text"
        elif data_type in ("integer", "bigint") and (
            (table, name) in fks or name in ("id", "djstripe_id")
        ):
            kind = "int"
        elif data_type == "timestamp with time zone":
            kind = "time"
        else:
            kind = "other"
        columns.append(Column(name, kind, fks.get((table, name), table if kind == "int" else None)))
    return columns


def _foreign_keys(cur) -> dict[tuple[str, str], str]:
    cur.execute(
        """SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text
           FROM pg_constraint c JOIN pg_attribute a
             ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
           JOIN pg_attribute r ON r.attrelid = c.confrelid AND r.attnum = c.confkey[1]
           WHERE c.contype = 'f' AND r.atttypid IN ('int4'::regtype, 'int8'::regtype)"""
    )
    return {(t, col): ref for t, col, ref in cur.fetchall() if ref in CLONED}


class Template:
    """A table's sample rows as COPY text with a hole for every value a clone changes."""

    def __init__(self, table: str, columns: list[Column], text: str):
        self.table, self.columns = table, columns
        self.tokens: list[tuple[str, object]] = []
        index: dict[tuple[str, object], int] = {}

        def hole(kind: str, value: object) -> str:
            key = (kind, value)
            if key not in index:
                index[key] = len(self.tokens)
                self.tokens.append(key)
            return f"{{v[{index[key]}]}}"

        rows = []
        for line in text.splitlines():
            fields = []
            for column, value in zip(columns, line.split("\t"), strict=True):
                value_fmt = value.replace("{", "{{").replace("}", "}}")
                if value == r"\N" or column.kind == "other":
                    fields.append(value_fmt)
                elif column.kind == "int":
                    fields.append(hole(f"int:{column.references}", int(value)))
                elif column.kind == "time":
                    fields.append(hole("time", value))
                else:
                    fields.append(_holes(value, hole))
            rows.append("\t".join(fields))
        self.format = "\n".join(rows) + ("\n" if rows else "")


def _holes(value: str, hole) -> str:
    parts, last = [], 0
    for match in TOKEN.finditer(value):
        parts.append(value[last : match.start()].replace("{", "{{").replace("}", "}}"))
        parts.append(hole(match.lastgroup, match.group()))
        last = match.end()
    parts.append(value[last:].replace("{", "{{").replace("}", "}}"))
    return "".join(parts)


class Renamer:
    """What each token becomes in clone ``k``."""

    def __init__(self, strides: dict[str, int], cloned_keys: dict[str, set[int]], step: timedelta):
        self.strides, self.cloned_keys, self.step = strides, cloned_keys, step
        self.times: dict[str, datetime] = {}

    def value(self, kind: str, token: object, k: int) -> str:
        if kind.startswith("int:"):
            table = kind[4:]
            if token in self.cloned_keys.get(table, ()):
                return str(token + k * self.strides[table])
            return str(token)
        if kind == "time":
            when = self.times.get(token)
            if when is None:
                when = self.times[token] = datetime.fromisoformat(token)
            return str(when - k * self.step)
        if kind == "stripe":
            return f"{token}z{k:x}"
        if kind == "order":
            return "ord_" + hashlib.sha1(f"{token}:{k}".encode()).hexdigest()[:20]  # noqa: S324
        if kind == "shopper":
            return f"{token}z{k:x}"
        if kind == "invoice":
            return f"{token}{k:X}"
        raise ValueError(kind)


def clone(db: str, orders: int) -> None:
    import psycopg

    with psycopg.connect(_dsn(db), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM orders_order")
        (per_sample,) = cur.fetchone()
        copies = max(0, -(-orders // per_sample) - 1)
        if not copies:
            return
        fks = _foreign_keys(cur)
        templates, strides, cloned_keys = [], {}, {}
        for table in CLONED:
            columns = _columns(cur, table, fks)
            where = ROW_FILTER.get(table, "TRUE")
            names = ", ".join(c.name for c in columns)
            with cur.copy(f"COPY (SELECT {names} FROM {table} WHERE {where}) TO STDOUT") as out:
                text = b"".join(bytes(block) for block in out).decode()
            # An integer primary key is shifted per clone; a Stripe id (events, sync states)
            # is renamed with the rest of the text.
            key = next((c.name for c in columns if c.kind == "int" and c.references == table), None)
            if key is not None:
                cur.execute(f"SELECT coalesce(max({key}), 0) FROM {table}")
                strides[table] = cur.fetchone()[0] + 1
                cur.execute(f"SELECT {key} FROM {table} WHERE {where}")
                cloned_keys[table] = {row[0] for row in cur.fetchall()}
            templates.append((Template(table, columns, text), key))
        renamer = Renamer(strides, cloned_keys, SPAN / copies)
        cur.execute("SET session_replication_role = replica")  # no FK triggers while copying
        started = time.monotonic()
        for template, key in templates:
            names = ", ".join(c.name for c in template.columns)
            with cur.copy(f"COPY {template.table} ({names}) FROM STDIN") as copy:
                for k in range(1, copies + 1):
                    values = [renamer.value(kind, token, k) for kind, token in template.tokens]
                    copy.write(template.format.format_map({"v": values}))
            if key is not None:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{template.table}', '{key}'), "
                    f"(SELECT max({key}) FROM {template.table}))"
                )
            print(f"  {db}: {template.table} x{copies} in {time.monotonic() - started:.0f} s",
                  file=sys.stderr)  # fmt: skip
        cur.execute("SET session_replication_role = DEFAULT")
        cur.execute("VACUUM ANALYZE")


# --- 3 and 4. Pages, served and explained ---------------------------------------------------


def pages(k: int) -> dict[str, str]:
    """The pages measured, for the sample's objects as renamed in clone ``k``."""
    from django.contrib.admin.utils import quote
    from djstripe.models import Charge, Invoice, Refund

    from billing.models import InboundEvent
    from orders.models import Order

    def renamed(value: str) -> str:
        renamer = Renamer({}, {}, timedelta(0))
        return TOKEN.sub(
            lambda m: renamer.value(m.lastgroup, m.group(), k) if k else m.group(), value
        )

    paid = Order.objects.filter(status="fulfilled", mode="payment").order_by("pk").first()
    refunded = Order.objects.filter(status="refunded").order_by("pk").first()
    member = Order.objects.filter(mode="subscription", status="fulfilled").order_by("pk").first()
    charge = Charge.objects.filter(payment_intent_id=paid.payment_intent_id).first()
    refund = Refund.objects.filter(charge__payment_intent_id=refunded.payment_intent_id).first()
    invoice = (
        Invoice.objects.filter(
            stripe_data__parent__subscription_details__subscription=member.subscription_id
        )
        .order_by("-created")
        .first()
    )
    event = (
        InboundEvent.objects.filter(object_id=paid.payment_intent_id).order_by("created").first()
    )
    ids = {
        "cs_": paid.checkout_session_id, "pi_": paid.payment_intent_id, "ch_": charge.id,
        "re_": refund.id, "in_": invoice.id, "sub_": member.subscription_id,
        "cus_": paid.customer_id, "evt_": event.id,
        "invoice number": invoice.stripe_data["number"],
        "email": paid.email, "email prefix": paid.email.split("@")[0] + "*",
        "order number": renamed(paid.public_id).removeprefix("ord_")[:8].upper(),
    }  # fmt: skip
    ids = {kind: renamed(value) if kind != "order number" else value for kind, value in ids.items()}
    admin = "/admin/"
    # the front page (work to do, webhook health, events per hour) is the admin index
    urls = {"admin index": admin, "order list": f"{admin}orders/order/"}
    for kind, value in ids.items():
        urls[f"order search by {kind}"] = f"{admin}orders/order/?q={urllib.parse.quote(value)}"
    for name, order in (("paid", paid), ("refunded", refunded), ("subscription", member)):
        urls[f"order page ({name})"] = (
            f"{admin}orders/order/{quote(renamed(order.public_id))}/change/"
        )
    objects = {
        "customer": paid.customer_id, "session": paid.checkout_session_id,
        "paymentintent": paid.payment_intent_id, "charge": charge.id, "refund": refund.id,
        "subscription": member.subscription_id, "invoice": invoice.id,
        "product": paid.items.get().price.product_id, "price": paid.items.get().price_id,
    }  # fmt: skip
    for model, stripe_id in objects.items():
        stripe_id = renamed(stripe_id)
        urls[f"{model} list"] = f"{admin}djstripe/{model}/"
        urls[f"{model} page"] = f"{admin}djstripe/{model}/{quote(stripe_id)}/change/"
    urls["charge list: failed"] = f"{admin}djstripe/charge/?status=failed"
    urls["invoice list: paid"] = f"{admin}djstripe/invoice/?status=paid"
    urls["customers by email"] = f"{admin}djstripe/customer/?q={urllib.parse.quote(ids['email'])}"
    urls["events list"] = f"{admin}billing/inboundevent/"
    urls["events by object id"] = (
        f"{admin}billing/inboundevent/?q={renamed(paid.payment_intent_id)}"
    )
    urls["events by type"] = f"{admin}billing/inboundevent/?type=invoice.paid"
    urls["events failed"] = f"{admin}billing/inboundevent/?status=failed"
    urls["event page"] = f"{admin}billing/inboundevent/{quote(renamed(event.id))}/change/"
    urls["deliveries"] = f"{admin}billing/webhookdelivery/"
    urls["sync states"] = f"{admin}billing/objectsync/"
    urls["sync states: customers"] = f"{admin}billing/objectsync/?object_type=customer"
    urls["audit log"] = f"{admin}billing/auditentry/"
    urls["payments"] = f"{admin}orders/orderpayment/"
    urls["flagged payments"] = f"{admin}orders/orderpayment/?flagged=yes"
    urls["payments by order number"] = f"{admin}orders/orderpayment/?q={ids['order number']}"
    urls["refund records"] = f"{admin}orders/orderrefund/"
    urls["refunds to approve"] = f"{admin}orders/orderrefund/?status__exact=requested"
    urls["disputes"] = f"{admin}orders/orderdispute/"
    urls["disputes needing a response"] = f"{admin}orders/orderdispute/?due=open"
    urls["search box: customer id"] = (
        f"{admin}orders/order/find/?q={urllib.parse.quote(renamed(paid.customer_id))}"
    )
    urls["search box: email"] = f"{admin}orders/order/find/?q={urllib.parse.quote(ids['email'])}"
    urls["users"] = f"{admin}auth/user/"
    urls["users by email"] = f"{admin}auth/user/?q={urllib.parse.quote(ids['email'])}"
    urls["API versions"] = f"{admin}billing/api-versions/"
    return urls


def _inspect_in_process(k: int) -> None:
    """Print JSON: a session cookie for the superuser, the pages, each page's query count and
    the big tables its queries scan sequentially."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reltuples FROM pg_class WHERE relkind = 'r'")
        sizes = dict(cursor.fetchall())
    operator = get_user_model().objects.get(username="operator")
    client = Client()
    client.force_login(operator)
    urls = pages(k)
    found = {}
    for name, url in urls.items():
        client.get(url)  # as the timed requests: after a first one (caches, counted hours)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        if response.status_code not in (200, 302):  # 302: the search box sends on
            raise SystemExit(f"{name}: {url} answered {response.status_code}")
        scans, most = set(), 0
        with connection.cursor() as cursor:
            for query in queries.captured_queries:
                sql = query["sql"]
                if not sql.lstrip().upper().startswith("SELECT"):
                    continue
                cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
                plan = cursor.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                for node in _nodes(plan[0]["Plan"]):
                    table = node.get("Relation Name")
                    if node["Node Type"] == "Seq Scan" and sizes.get(table, 0) > BIG_TABLE:
                        # A LIMIT may stop it early: what it read is said too.
                        scans.add(
                            f"{table} ({int(sizes[table]):,} rows, {_rows_read(node):,} read)"
                        )
                    if "Scan" in node["Node Type"]:
                        most = max(most, _rows_read(node))
        found[name] = {"url": url, "queries": len(queries), "scans": sorted(scans), "read": most}
    print(json.dumps({"cookie": client.cookies["sessionid"].value, "pages": found}))


def _rows_read(node: dict) -> int:
    """Rows a scan node looked at: those it returned and those its filters threw away."""
    kept = node.get("Actual Rows", 0)
    dropped = node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
    return int((kept + dropped) * node.get("Actual Loops", 1))


def _nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


@dataclass
class Size:
    orders: int
    db: str
    port: int = 0
    cookie: str = ""
    pages: dict | None = None
    times: dict | None = None


def _get(port: int, path: str, cookie: str) -> float:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    conn.request("GET", path, headers={"Cookie": f"sessionid={cookie}", "Host": "127.0.0.1"})
    response = conn.getresponse()
    response.read()
    took = time.perf_counter() - started
    conn.close()
    if response.status not in (200, 302):  # 302: the search box sends on (not followed)
        raise RuntimeError(f"{path} answered {response.status}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, action="append")
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--_sample")
    parser.add_argument("--_inspect", type=int)
    args = parser.parse_args()
    if args._sample:
        _sample_in_process()
        return 0
    if args._inspect is not None:
        _inspect_in_process(args._inspect)
        return 0

    from fakestripe.server import FakeStripeServer

    name = sample_name()
    _stale_drop(name)
    sizes = [Size(n, f"{name}_{n}") for n in sorted(set(args.orders or [1000, 100_000]))]
    server = FakeStripeServer(port=0, webhook_max_attempts=1).start()
    procs = Processes(Path(tempfile.mkdtemp(prefix="console-scale-")))
    try:
        started = time.monotonic()
        sample_build(name, server.url)
        print(f"sample {name}: ready in {time.monotonic() - started:.0f} s", file=sys.stderr)
        for size in sizes:
            if args.keep and _db_exists(size.db):
                continue
            _psql(f"DROP DATABASE IF EXISTS {size.db}")
            _psql(f"CREATE DATABASE {size.db} TEMPLATE {name}")
            started = time.monotonic()
            clone(size.db, size.orders)
            print(f"{size.db}: cloned in {time.monotonic() - started:.0f} s", file=sys.stderr)
        static = Path(procs.log_dir) / "static"  # DEBUG off serves the manifest's files
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--no-input", "--verbosity", "0"],
            env=_env(sizes[0].db, server.url, DJANGO_DEBUG="false", DJANGO_STATIC_ROOT=str(static)),
            cwd=ROOT, check=True,
        )  # fmt: skip
        for size in sizes:
            env = _env(size.db, server.url, DJANGO_DEBUG="true")
            out = subprocess.run(
                [sys.executable, __file__, "--_inspect", str(_middle_clone(size))],
                env=env, cwd=ROOT, check=True, capture_output=True, text=True,
            )  # fmt: skip
            found = json.loads(out.stdout.strip().splitlines()[-1])
            size.cookie, size.pages = found["cookie"], found["pages"]
            size.port = free_port()
            procs.start(
                f"gunicorn-{size.orders}",
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
                env=_env(size.db, server.url, DJANGO_DEBUG="false",
                         DJANGO_SECURE_SSL_REDIRECT="false", DJANGO_SESSION_COOKIE_SECURE="false",
                         DJANGO_CSRF_COOKIE_SECURE="false", DJANGO_SECURE_HSTS_SECONDS="0",
                         GUNICORN_BIND=f"127.0.0.1:{size.port}", GUNICORN_WORKERS="2",
                         DJANGO_STATIC_ROOT=str(static)),
                cwd=ROOT,
            )  # fmt: skip
        for size in sizes:
            wait_until(lambda s=size: _healthy(s.port), timeout=60, what="gunicorn")
            size.times = {}
        names = list(sizes[0].pages)
        for name in names:
            for size in sizes:  # a warm-up request each
                _get(size.port, size.pages[name]["url"], size.cookie)
            for _ in range(args.requests):
                for size in sizes:
                    took = _get(size.port, size.pages[name]["url"], size.cookie)
                    size.times.setdefault(name, []).append(took * 1000)
        _report(sizes, names)
    finally:
        procs.stop_all()
        server.stop()
        if not args.keep:
            for size in sizes:
                _psql(f"DROP DATABASE IF EXISTS {size.db}")
    return 0


def _stale_drop(current: str) -> None:
    """Databases of an earlier sample (other migrations): several GB each."""
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qAtc",
         "SELECT datname FROM pg_database WHERE datname LIKE 'console\\_scale\\_%'"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    for db in out.stdout.split():
        if not db.startswith(current):
            _psql(f"DROP DATABASE IF EXISTS {db}")


def _middle_clone(size: Size) -> int:
    import psycopg

    with psycopg.connect(_dsn(size.db)) as conn:
        (orders,) = conn.execute("SELECT count(*) FROM orders_order").fetchone()
    per_sample = orders  # the clones are of equal size: the sample's count
    with psycopg.connect(_dsn(sample_name())) as conn:
        (per_sample,) = conn.execute("SELECT count(*) FROM orders_order").fetchone()
    return (orders // per_sample) // 2


def _healthy(port: int) -> bool:
    import http.client

    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz", headers={"Host": "127.0.0.1"})
        return conn.getresponse().status == 200
    except OSError:
        return False


def _report(sizes: list[Size], names: list[str]) -> None:
    small, large = sizes[0], sizes[-1]
    head = f"{'page':<34}" + "".join(f"{f'{s.orders:,} orders ms':>22}" for s in sizes)
    print("console pages, median (max) of requests, gunicorn DEBUG off; queries per page")
    print(
        f"{head}{'growth':>8}{'queries':>12}  seq scans on tables > {BIG_TABLE:,} rows ({large.orders:,})"
    )
    worst = (0.0, "")
    for name in names:
        cells, medians = "", []
        for size in sizes:
            times = size.times[name]
            median = statistics.median(times)
            medians.append(median)
            cells += f"{f'{median:.0f} ({max(times):.0f})':>22}"
        growth = medians[-1] / medians[0]
        worst = max(worst, (growth, name))
        queries = "/".join(str(s.pages[name]["queries"]) for s in sizes)
        read = "/".join(f"{s.pages[name]['read']:,}" for s in sizes)
        scans = ", ".join(large.pages[name]["scans"]) or "-"
        print(f"{name:<34}{cells}{growth:>8.2f}{queries:>12}{read:>18}  {scans}")
    slowest = max(names, key=lambda n: statistics.median(large.times[n]))
    print(f"slowest at {large.orders:,}: {slowest} "
          f"({statistics.median(large.times[slowest]):.0f} ms median)")  # fmt: skip
    print(f"worst growth {worst[0]:.2f} ({worst[1]})")
    del small


if __name__ == "__main__":
    sys.exit(main())
