"""Webhook intake and event processing under real servers: the product beside dj-stripe.

1. Intake. gunicorn (4 sync workers, the project's gunicorn.conf.py) on PostgreSQL; a load
   generator on loopback sends valid signed ``customer.updated`` deliveries (real customer
   objects from fakestripe, a new event id each time) from 16 connections, for a fixed time
   after a warm-up. First to the product's intake view (``/stripe/webhook/<uuid>/``: verify,
   store, enqueue; no worker runs, so the queue only fills), then, on the same database, to
   dj-stripe's ``ProcessWebhookView`` mounted by a bench-only urlconf (it verifies, stores and
   processes inline, retrieving the object from the API). Acks/s, p50/p99 latency, errors,
   and the product/dj-stripe ratios.
2. End to end. The product's gunicorn plus 2 Celery workers (prefork, concurrency 1 each) on
   Redis: events per second fully processed for M events on M different customers, from
   the first send until every event is processed, and Stripe API calls per event.
3. Burst. One customer updated 10 times in fakestripe; its 10 real ``customer.updated``
   events are delivered concurrently; API calls it cost, beside the 10 (1 per event) that a
   fetch-per-event pipeline makes.
4. Storm. Stripe answers 429 past 10 requests/s (``--storm-rate-limit``; test mode allows 25)
   and a 500 to a share of the rest (``--storm-error-rate``, 30%) while S events for S customers arrive: the time from the
   first send until every event is processed, with the production retry settings, and what
   the product met (429s, 500s, attempts per event).
5. Thin events, in the same run: the product's intake of thin notifications
   (``v1.customer.updated``, ``"object": "v2.core.event"``, no data) to its event destination
   (phase 1's load, beside the snapshot figures); then, with the deployment on its thin
   destination only (its snapshot endpoints disabled), phases 2 and 3 again with thin
   notifications: events/s end to end and Stripe API calls per event (the worker fetches each
   related object; the burst's 10 real thin events of one customer are coalesced as snapshots'
   are).

    .venv/bin/python bench/webhooks.py [--seconds 15] [--warmup 2] [--connections 16]
                                       [--events 300] [--storm-events 200] [--redis-db 13]
                                       [--keep-logs]

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) and Redis on 127.0.0.1:6379.
It creates and drops its own database, uses Redis db 13 (``--redis-db``; flushed before and
after), starts fakestripe, gunicorn and Celery itself with DEBUG off, and stops them all on
exit, error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ heads sys.path, where its modules would shadow top-level ones
# (bench/fakestripe.py); the project root takes its place.
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._support import (  # noqa: E402
    Processes,
    counter,
    free_port,
    port_open,
    run_load,
    wait_until,
)

PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DB = 13  # --redis-db
BROKER_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
API_VERSION = "2026-08-26.dahlia"  # settings.STRIPE_API_VERSION's default
GUNICORN_WORKERS = 4
CELERY_WORKERS = 2
PHASE1_CUSTOMERS = 200
BURST = 10
RETRIEVE_ROUTE = "GET /v1/customers/{id}"
V2_EVENT_ROUTE = "GET /v2/core/events/{evt_id}"
# How billing.webhooks.processing says an event was served by an earlier fetch.
COALESCED = "fetched from Stripe moments ago for another event"
# What a thin notification carries (the v2 event without changes, data or snapshot_event).
THIN_KEYS = ("id", "object", "context", "created", "livemode", "reason", "related_object", "type")


class BenchError(Exception):
    """A precondition or a phase failed; the message says what to look at."""


# --- Payloads and signatures --------------------------------------------------------------


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """Stripe's scheme (as billing.stripe_api.signature_header): HMAC-SHA256 of "t.body"."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def customer_updated(event_id: str, customer_json: str) -> bytes:
    """A ``customer.updated`` event around a customer as the API returned it (JSON text)."""
    return (
        f'{{"id": "{event_id}", "object": "event", "api_version": "{API_VERSION}", '
        f'"created": {int(time.time())}, "data": {{"object": {customer_json}, '
        f'"previous_attributes": {{"name": null}}}}, "livemode": false, '
        f'"pending_webhooks": 1, "request": {{"id": null, "idempotency_key": null}}, '
        f'"type": "customer.updated"}}'
    ).encode()


def thin_customer_updated(event_id: str, customer_id: str) -> bytes:
    """The thin notification of a ``customer.updated`` (no data: the receiver fetches)."""
    created = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps(
        {
            "id": event_id,
            "object": "v2.core.event",
            "context": None,
            "created": created,
            "livemode": False,
            "reason": None,
            "related_object": {
                "id": customer_id,
                "type": "customer",
                "url": f"/v1/customers/{customer_id}",
            },
            "type": "v1.customer.updated",
        },
        indent=2,
    ).encode()


def delivery(path: str, body: bytes, secret: str):
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": sign(body, secret),
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    return ("POST", path, body, headers)


# --- fakestripe ---------------------------------------------------------------------------


class FakeStripe:
    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.key = key

    def call(self, method: str, path: str, params: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            body = urlencode(params or {}) if method == "POST" else None
            if method == "GET" and params:
                path = f"{path}?{urlencode(params)}"
            headers = {"Authorization": f"Bearer {self.key}", "Stripe-Version": API_VERSION}
            if body is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        if response.status >= 400:
            raise BenchError(f"fakestripe {method} {path}: {response.status} {payload[:300]!r}")
        return json.loads(payload)

    def customers(self) -> list[dict]:
        found, after = [], None
        while True:
            page = self.call(
                "GET",
                "/v1/customers",
                {"limit": 100, **({"starting_after": after} if after else {})},
            )
            found.extend(page["data"])
            if not page["has_more"]:
                return found
            after = page["data"][-1]["id"]

    def stats(self) -> dict:
        return self.call("GET", "/_fake/stats")

    def stats_reset(self) -> None:
        self.call("POST", "/_fake/stats/reset")


# --- Database and broker ------------------------------------------------------------------


def pg_connect(dbname: str):
    import psycopg

    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user="postgres", dbname=dbname, autocommit=True
    )


def services_check() -> None:
    problems = []
    if not port_open(PG_HOST, PG_PORT):
        problems.append(f"PostgreSQL is not listening on {PG_HOST}:{PG_PORT}")
    else:
        try:
            pg_connect("postgres").close()
        except Exception as exc:
            problems.append(f"cannot connect to PostgreSQL as postgres (trust auth): {exc}")
    if not port_open(REDIS_HOST, REDIS_PORT):
        problems.append(f"Redis is not listening on {REDIS_HOST}:{REDIS_PORT}")
    if problems:
        raise BenchError(
            "; ".join(problems) + ". Start them (e.g. `pg_ctlcluster 15 main start`, "
            "`redis-server --daemonize yes --bind 127.0.0.1`) and run again."
        )


def redis_flush() -> None:
    import redis

    redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB).flushdb()


def event_counts(dbname: str, prefix: str) -> dict[str, int]:
    with pg_connect(dbname) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM billing_inboundevent WHERE id LIKE %s GROUP BY status",
            [prefix + "%"],
        ).fetchall()
    return dict(rows)


def wait_processed(dbname: str, prefix: str, total: int, timeout: float, procs, names):
    """Poll the inbox until every event with ``prefix`` is final; return (seconds, counts)."""
    start = time.perf_counter()
    deadline = start + timeout
    while True:
        counts = event_counts(dbname, prefix)
        if counts.get("processed", 0) + counts.get("ignored", 0) >= total:
            return time.perf_counter(), counts
        if time.perf_counter() > deadline:
            raise BenchError(f"events {prefix}* not all processed after {timeout:.0f} s: {counts}")
        for name in names:
            procs.check_alive(name)
        time.sleep(0.02)


# --- The bench ----------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, log_dir: Path) -> None:
        self.args = args
        self.log_dir = log_dir
        self.procs = Processes(log_dir)
        self.dbname = f"bench_webhooks_{os.getpid()}"
        self.db_created = False
        self.key = "sk_test_" + secrets.token_hex(16)
        self.fake: FakeStripe | None = None
        self.lines: list[str] = []

    @property
    def thin_first(self) -> int:
        """The first customer of the thin end-to-end run (after the snapshot runs' ones)."""
        return PHASE1_CUSTOMERS + self.args.events + 1 + self.args.storm_events

    def snapshot_endpoints_disable(self) -> None:
        """The deployment on its thin destination only: its snapshot endpoints (the product's
        and dj-stripe's rows) disabled, as after a move to thin events is finished. No twin
        can then exist, so no thin event costs a fetch of its full event."""
        with pg_connect(self.dbname) as conn:
            conn.execute("UPDATE djstripe_webhookendpoint SET status = 'disabled'")

    # -- environment

    def env(self, settings_module: str = "config.settings", **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "PYTHONUNBUFFERED": "1",
                "DJANGO_SETTINGS_MODULE": settings_module,
                "DJANGO_DEBUG": "false",
                "DJANGO_SECRET_KEY": "bench-" + secrets.token_urlsafe(40),
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
                "DJANGO_SECURE_SSL_REDIRECT": "false",
                "DJANGO_LOG_LEVEL": "WARNING",
                # One gunicorn machine: django-ratelimit's counters may stay per process.
                "DJANGO_SILENCED_SYSTEM_CHECKS": "django_ratelimit.E003",
                "DATABASE_URL": f"postgres://postgres@{PG_HOST}:{PG_PORT}/{self.dbname}",
                "DATABASE_CONN_MAX_AGE": "60",
                "CELERY_BROKER_URL": BROKER_URL,
                "CELERY_RESULT_BACKEND": "",
                "STRIPE_API_BASE": self.fake.url if self.fake else "",
                "STRIPE_SECRET_KEY": self.key,
                "GUNICORN_ACCESS_LOG": "0",
                "GUNICORN_WORKERS": str(GUNICORN_WORKERS),
                # No worker recycling mid-run (gunicorn.conf.py's default is every ~1,000
                # requests): a restart's seconds would land in whichever receiver answers
                # more requests, and measure Django's start-up rather than its intake.
                "GUNICORN_MAX_REQUESTS": "0",
                **extra,
            }
        )
        return env

    def run_child(self, name: str, command: list[str], env: dict[str, str], timeout: float):
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            try:
                done = subprocess.run(
                    command,
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise BenchError(f"{name} took over {timeout:.0f} s; see {log}") from None
        if done.returncode:
            raise BenchError(f"{name} failed ({done.returncode}); see {log}")

    # -- setup

    def setup(self) -> None:
        services_check()
        with pg_connect("postgres") as conn:
            conn.execute(f'CREATE DATABASE "{self.dbname}"')
        self.db_created = True
        redis_flush()

        port = free_port()
        self.procs.start(
            "fakestripe",
            [sys.executable, "-m", "fakestripe", "--host", "127.0.0.1", "--port", str(port),
             "--webhook-max-attempts", "1", "--webhook-timeout", "2"],
            env=self.env(), cwd=ROOT,
        )  # fmt: skip
        wait_until(lambda: port_open("127.0.0.1", port, 0.2), timeout=30, what="fakestripe")
        self.fake = FakeStripe(port, self.key)

        # The schema straight from the models (see bench/djstripe_settings.py).
        self.run_child(
            "schema",
            [sys.executable, "manage.py", "migrate", "--run-syncdb", "--no-input", "-v", "0"],
            self.env("bench.djstripe_settings"),
            timeout=240,
        )

        # Customers: 200 for the intake runs, M for the end-to-end run, 1 for the burst, S for
        # the storm, then M for the thin end-to-end run and 1 for the thin burst.
        wanted = PHASE1_CUSTOMERS + 2 * self.args.events + 2 + self.args.storm_events
        self.fake.call("POST", "/_fake/bulk/customers", {"count": wanted})
        customers = self.fake.customers()
        if len(customers) != wanted:
            raise BenchError(f"fakestripe lists {len(customers)} customers, not {wanted}")
        self.customers = customers
        self.customer_json = [json.dumps(c, separators=(",", ":")) for c in customers]

        # Endpoints (product and dj-stripe), and a query count of one delivery to each view.
        spec = self.log_dir / "setup-in.json"
        out = self.log_dir / "setup-out.json"
        probes = [customer_updated(f"evt_bench_probe_{n}", self.customer_json[n]).decode()
                  for n in range(4)]  # fmt: skip
        probes += [thin_customer_updated(f"evt_bench_thin_probe_{n}", self.customers[n]["id"])
                   .decode() for n in range(2)]  # fmt: skip
        # dj-stripe's mirror starts with the intake customers in it, as a live shop's would:
        # customer.updated is about a customer the shop has (first sight costs dj-stripe an
        # extra retrieve, which would make its figures depend on the run's length).
        mirrored = self.customers[:PHASE1_CUSTOMERS]
        spec.write_text(json.dumps({"probes": probes, "mirror": mirrored}))
        self.run_child(
            "setup",
            [sys.executable, str(Path(__file__).resolve()), "--child-setup", str(spec), str(out)],
            self.env(),
            timeout=120,
        )
        self.endpoints = json.loads(out.read_text())

    # -- servers

    def gunicorn_start(self, name: str, settings_module: str) -> int:
        port = free_port()
        self.procs.start(
            name,
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
            env=self.env(settings_module, GUNICORN_BIND=f"127.0.0.1:{port}"),
            cwd=ROOT,
        )

        def listening() -> bool:
            self.procs.check_alive(name)
            return port_open("127.0.0.1", port, 0.2)

        wait_until(listening, timeout=60, what=f"{name} to listen")
        return port

    def celery_start(self) -> list[str]:
        from celery import Celery

        names = []
        tag = f"bench{os.getpid()}"
        for n in range(CELERY_WORKERS):
            name = f"celery{n}"
            self.procs.start(
                name,
                [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork",
                 "--concurrency=1", "-n", f"{tag}-{n}@%h", "--loglevel=WARNING",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                env=self.env(), cwd=ROOT,
            )  # fmt: skip
            names.append(name)
        app = Celery("bench", broker=BROKER_URL)
        try:
            deadline = time.monotonic() + 60
            while True:
                for name in names:
                    self.procs.check_alive(name)
                replies = app.control.ping(timeout=0.5) or []
                answered = {host for reply in replies for host in reply}
                if sum(1 for h in answered if h.startswith(f"{tag}-")) >= CELERY_WORKERS:
                    return names
                if time.monotonic() > deadline:
                    raise BenchError(f"celery workers did not answer ping in 60 s: {answered}")
        finally:
            app.close()

    # -- phase 1: intake

    def intake(
        self, label: str, settings_module: str, path: str, secret: str, thin: bool = False
    ) -> dict:
        name = f"gunicorn-{label}"

        def body(event_id: str, n: int) -> bytes:
            if thin:
                return thin_customer_updated(event_id, self.customers[n]["id"])
            return customer_updated(event_id, self.customer_json[n])

        port = self.gunicorn_start(name, settings_module)
        try:
            # One delivery first: every worker must be up and answering 2xx before the clock.
            smoke = run_load(
                "127.0.0.1",
                port,
                [delivery(path, body(f"evt_bench_smoke_{label}", 0), secret)],
                threads=1,
            )  # fmt: skip
            if smoke.errors:
                raise BenchError(f"{label}: smoke delivery failed {smoke.samples}")
            next_n = counter()

            def make():
                n = next_n()
                return delivery(path, body(f"evt_bench_{label}_{n}", n % PHASE1_CUSTOMERS), secret)

            self.fake.stats_reset()
            result = run_load(
                "127.0.0.1",
                port,
                make,
                threads=self.args.connections,
                duration=self.args.seconds,
                warmup=self.args.warmup,
            )
            stats = self.fake.stats()
            self.procs.check_alive(name)
            sent = next_n() - 1
        finally:
            self.procs.stop(name)
        return {
            "result": result,
            "api_calls": stats["total"],
            "by_route": stats["by_route"],
            "sent": sent,
        }

    # -- phase 2: end to end

    def end_to_end(self, port: int, workers: list[str], thin: bool = False) -> dict:
        receiver = self.endpoints["thin" if thin else "product"]
        secret, path = receiver["secret"], f"/stripe/webhook/{receiver['uuid']}/"
        first = self.thin_first if thin else PHASE1_CUSTOMERS
        pool = list(range(first, first + self.args.events))
        prefix = "evt_thin_e2e_" if thin else "evt_e2e_"

        def requests():
            for n, index in enumerate(pool):
                if thin:
                    body = thin_customer_updated(f"{prefix}{n}", self.customers[index]["id"])
                else:
                    body = customer_updated(f"{prefix}{n}", self.customer_json[index])
                yield delivery(path, body, secret)

        self.fake.stats_reset()
        start = time.perf_counter()
        sent = run_load("127.0.0.1", port, requests(), threads=self.args.connections)
        acked = time.perf_counter()
        if sent.errors:
            raise BenchError(f"end to end: {sent.errors} deliveries refused: {sent.samples}")
        done, counts = wait_processed(
            self.dbname, prefix, len(pool), 180, self.procs, ["gunicorn-e2e", *workers]
        )
        stats = self.fake.stats()
        with pg_connect(self.dbname) as conn:
            span = conn.execute(
                "SELECT extract(epoch FROM max(processed_at) - min(processed_at)) "
                "FROM billing_inboundevent WHERE id LIKE %s",
                [prefix + "%"],
            ).fetchone()[0]
        return {
            "events": len(pool),
            "worker_span_s": float(span or 0),
            "acked_s": acked - start,
            "done_s": done - start,
            "counts": counts,
            "retrieves": stats["by_route"].get(RETRIEVE_ROUTE, 0),
            "v2_events": stats["by_route"].get(V2_EVENT_ROUTE, 0),
            "api_calls": stats["total"],
        }

    # -- phase 3: burst on one object

    def burst(self, port: int, workers: list[str], thin: bool = False) -> dict:
        receiver = self.endpoints["thin" if thin else "product"]
        secret, path = receiver["secret"], f"/stripe/webhook/{receiver['uuid']}/"
        customer_id = self.customers[-1 if thin else PHASE1_CUSTOMERS + self.args.events]["id"]
        for n in range(BURST):
            self.fake.call("POST", f"/v1/customers/{customer_id}", {"name": f"Burst {n + 1}"})
        if thin:
            # The thin events Stripe made for the updates (the bench's destination takes
            # v1.customer.updated), as notifications: the v2 event without changes or data.
            listed = self.fake.call(
                "GET", "/v2/core/events", {"object_id": customer_id, "limit": 100}
            )["data"]
            events = [
                {k: e.get(k) for k in THIN_KEYS}
                for e in listed
                if e["type"] == "v1.customer.updated"
            ]
        else:
            listed = self.fake.call(
                "GET", "/v1/events", {"type": "customer.updated", "limit": 100}
            )["data"]
            events = [e for e in listed if e["data"]["object"]["id"] == customer_id]
        if len(events) != BURST:
            raise BenchError(f"fakestripe emitted {len(events)} customer.updated, not {BURST}")
        # Webhook bodies are pretty-printed, as Stripe (and fakestripe) send them.
        bodies = [json.dumps(e, indent=2).encode() for e in events]
        self.fake.stats_reset()
        sent = run_load(
            "127.0.0.1", port, [delivery(path, b, secret) for b in bodies], threads=BURST
        )
        if sent.errors:
            raise BenchError(f"burst: {sent.errors} deliveries refused: {sent.samples}")
        ids = [e["id"] for e in events]
        deadline = time.monotonic() + 60
        with pg_connect(self.dbname) as conn:
            while True:
                rows = conn.execute(
                    "SELECT status, outcome FROM billing_inboundevent WHERE id = ANY(%s)", [ids]
                ).fetchall()
                if sum(1 for s, _ in rows if s in ("processed", "ignored")) == BURST:
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"burst events not processed after 60 s: {rows}")
                for name in ["gunicorn-e2e", *workers]:
                    self.procs.check_alive(name)
                time.sleep(0.02)
        stats = self.fake.stats()
        return {
            "retrieves": stats["by_route"].get(RETRIEVE_ROUTE, 0),
            "v2_events": stats["by_route"].get(V2_EVENT_ROUTE, 0),
            "api_calls": stats["total"],
            "coalesced": sum(1 for _, outcome in rows if COALESCED in outcome),
        }

    # -- phase 4: a 429/500 storm

    def storm(self, port: int, workers: list[str]) -> dict:
        secret, endpoint = self.endpoints["product"]["secret"], self.endpoints["product"]["uuid"]
        path = f"/stripe/webhook/{endpoint}/"
        first = PHASE1_CUSTOMERS + self.args.events + 1
        pool = self.customer_json[first : first + self.args.storm_events]
        assert first + self.args.storm_events == self.thin_first
        self.fake.stats_reset()
        self.fake.call(
            "POST",
            "/_fake/faults",
            {"rate_limit": self.args.storm_rate_limit, "error_rate": self.args.storm_error_rate},
        )
        try:
            start = time.perf_counter()
            sent = run_load(
                "127.0.0.1",
                port,
                [delivery(path, customer_updated(f"evt_storm_{n}", c), secret)
                 for n, c in enumerate(pool)],
                threads=self.args.connections,
            )  # fmt: skip
            acked = time.perf_counter()
            if sent.errors:
                raise BenchError(f"storm: {sent.errors} deliveries refused: {sent.samples}")
            done, counts = wait_processed(
                self.dbname, "evt_storm_", len(pool), 900, self.procs, ["gunicorn-e2e", *workers]
            )
        finally:
            self.fake.call("DELETE", "/_fake/faults")
        stats = self.fake.stats()
        with pg_connect(self.dbname) as conn:
            attempts = conn.execute(
                "SELECT sum(attempts), max(attempts) FROM billing_inboundevent "
                "WHERE id LIKE 'evt_storm_%%'"
            ).fetchone()
        return {
            "events": len(pool),
            "acked_s": acked - start,
            "done_s": done - start,
            "ack_p99_ms": sent.ms(99),
            "counts": counts,
            "api_calls": stats["total"],
            "by_status": stats["by_status"],
            "attempts": int(attempts[0] or 0),
            "max_attempts": int(attempts[1] or 0),
        }

    # -- run

    def run(self) -> None:
        started = time.perf_counter()
        self.setup()
        product, djs = self.endpoints["product"], self.endpoints["djstripe"]
        intake = {
            "product": self.intake(
                "product",
                "config.settings",
                f"/stripe/webhook/{product['uuid']}/",
                product["secret"],
            ),
            # thin right after snapshot: the two intakes side by side in time
            "thin": self.intake(
                "thin",
                "config.settings",
                f"/stripe/webhook/{self.endpoints['thin']['uuid']}/",
                self.endpoints["thin"]["secret"],
                thin=True,
            ),
            "djstripe": self.intake(
                "djstripe",
                "bench.djstripe_settings",
                f"/djstripe/webhook/{djs['uuid']}/",
                djs["secret"],
            ),
        }
        redis_flush()  # the product's phase-1 tasks: no worker was meant to run them
        port = self.gunicorn_start("gunicorn-e2e", "config.settings")
        workers = self.celery_start()
        e2e = self.end_to_end(port, workers)
        burst = self.burst(port, workers)
        storm = self.storm(port, workers) if self.args.storm_events else None
        self.snapshot_endpoints_disable()
        thin_e2e = self.end_to_end(port, workers, thin=True)
        thin_burst = self.burst(port, workers, thin=True)
        self.report(intake, e2e, burst, storm, time.perf_counter() - started)
        self.report_thin(intake, e2e, burst, thin_e2e, thin_burst)

    def report(self, intake: dict, e2e: dict, burst: dict, storm: dict | None, wall: float):
        a = self.args
        p, d = intake["product"]["result"], intake["djstripe"]["result"]
        print(
            f"Webhook intake: gunicorn ({GUNICORN_WORKERS} sync workers, gunicorn.conf.py), "
            f"PostgreSQL, {a.connections} connections on loopback,"
        )
        print(
            f"signed customer.updated deliveries (new event id each), {a.seconds:g} s after "
            f"{a.warmup:g} s warm-up; {os.cpu_count()} CPUs, load average "
            f"{os.getloadavg()[0]:.1f} at the end"
        )
        print()
        header = (
            f"{'receiver':<38}{'acks/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
            f"{'API calls':>11}{'SQL':>6}"
        )
        print(header)
        print(f"{'':<38}{'':>9}{'':>9}{'':>9}{'':>8}{'/delivery':>11}{'/dlv':>6}")
        print("-" * len(header))
        rows = [
            ("product  /stripe/webhook/<uuid>/", "product", p),
            ("dj-stripe ProcessWebhookView", "djstripe", d),
        ]
        for title, key, result in rows:
            info = intake[key]
            calls = info["api_calls"] / max(1, info["sent"])
            queries = self.endpoints[key]["queries"][-1]
            print(
                f"{title:<38}{result.rate:>9.1f}{result.ms(50):>9.1f}{result.ms(99):>9.1f}"
                f"{result.errors:>8}{calls:>11.2f}{queries:>6}"
            )
        print()
        ratio_rate = p.rate / d.rate if d.rate else float("nan")
        ratio_p99 = p.ms(99) / d.ms(99) if d.ok else float("nan")
        print(
            f"ratio product / dj-stripe: throughput x{ratio_rate:.2f}, "
            f"p50 x{p.ms(50) / d.ms(50):.2f}, p99 x{ratio_p99:.2f} (lower latency is better)"
        )
        for title, key, result in rows:
            routes = intake[key]["by_route"]
            if routes:
                spent = ", ".join(f"{route} {count}" for route, count in sorted(routes.items()))
                print(
                    f"  {title.split()[0]} API calls for {intake[key]['sent']} deliveries: {spent}"
                )
            if result.errors:
                print(f"  {title.split()[0]} errors {result.statuses}: {result.samples[:2]}")
        print()
        rate = e2e["events"] / e2e["done_s"]
        print(
            f"End to end: {e2e['events']} customer.updated events for {e2e['events']} different "
            f"customers, product gunicorn + {CELERY_WORKERS} Celery workers (prefork, 1 each)"
        )
        print(f"  all acknowledged after {e2e['acked_s']:.2f} s, all processed after "
              f"{e2e['done_s']:.2f} s")  # fmt: skip
        print(f"  events/s fully processed (first send to last processed): {rate:.1f}")
        if e2e["worker_span_s"]:
            print(
                f"  workers' rate (first to last event finished, processed_at): "
                f"{(e2e['events'] - 1) / e2e['worker_span_s']:.1f} events/s"
            )
        print(
            f"  Stripe API calls: {e2e['api_calls']} ({RETRIEVE_ROUTE}: {e2e['retrieves']}) "
            f"= {e2e['api_calls'] / e2e['events']:.2f} per event"
        )
        print()
        print(
            f"Burst: {BURST} real customer.updated events for one customer, delivered concurrently"
        )
        print(
            f"  product pipeline: {burst['retrieves']} x {RETRIEVE_ROUTE} "
            f"({burst['api_calls']} API calls in all) = {burst['api_calls'] / BURST:.2f} per event; "
            f"{burst['coalesced']} of {BURST} events served by an earlier fetch (coalesced)"
        )
        print(
            f"  fetch-per-event baseline (one retrieve per event, what a pipeline that fetches "
            f"each event's object does): {BURST} calls = 1.00 per event"
        )
        djs = intake["djstripe"]
        print(
            f"  (dj-stripe's ProcessWebhookView, measured above: "
            f"{djs['api_calls'] / max(1, djs['sent']):.2f} API calls per customer.updated delivery)"
        )
        print()
        if storm:
            by_status = storm["by_status"]
            print(
                f"Storm: {storm['events']} customer.updated events for as many customers while "
                f"Stripe answers 429 past {self.args.storm_rate_limit} requests/s and 500 to "
                f"{self.args.storm_error_rate:.0%} of the rest (production retry settings)"
            )
            print(
                f"  all acknowledged after {storm['acked_s']:.2f} s (p99 {storm['ack_p99_ms']:.1f}"
                f" ms), all processed after {storm['done_s']:.2f} s (end to end)"
            )
            print(
                f"  Stripe answered {by_status.get('429', 0)} x 429, {by_status.get('500', 0)} x "
                f"500, {by_status.get('200', 0)} x 200 ({storm['api_calls']} calls); "
                f"{storm['attempts']} processing attempts ({storm['attempts'] / storm['events']:.2f}"
                f" per event, at most {storm['max_attempts']}); final: {storm['counts']}"
            )
            print()
        target_rate = p.rate >= 5 * d.rate
        target_p99 = d.ok and p.ms(99) <= d.ms(99) / 5
        print(
            f"target: acks/s >= 5x dj-stripe's: {'met' if target_rate else 'NOT met'} "
            f"(x{ratio_rate:.2f}); p99 <= 1/5 of dj-stripe's: "
            f"{'met' if target_p99 else 'NOT met'} (x{ratio_p99:.2f})"
        )
        print(f"(wall time {wall:.0f} s)")

    def report_thin(self, intake: dict, e2e: dict, burst: dict, thin_e2e: dict, thin_burst):
        """Thin beside snapshot, from the same run."""
        print()
        print(
            "Thin events beside snapshots (same run, same servers; thin end to end and burst "
            "with the deployment on its thin destination only):"
        )
        header = (
            f"{'payload':<10}{'acks/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'SQL/dlv':>9}"
            f"{'e2e ev/s':>10}{'calls/ev':>10}{'v2 ev':>7}{'burst calls/ev':>16}"
        )
        print(header)
        print("-" * len(header))
        for label, key, run, bursted in (
            ("snapshot", "product", e2e, burst),
            ("thin", "thin", thin_e2e, thin_burst),
        ):
            result = intake[key]["result"]
            print(
                f"{label:<10}{result.rate:>9.1f}{result.ms(50):>9.1f}{result.ms(99):>9.1f}"
                f"{self.endpoints[key]['queries'][-1]:>9}"
                f"{run['events'] / run['done_s']:>10.1f}{run['api_calls'] / run['events']:>10.2f}"
                f"{run['v2_events']:>7}{bursted['api_calls'] / BURST:>16.2f}"
            )
        print(
            f"  calls/ev: Stripe API calls per processed event end to end ({RETRIEVE_ROUTE} "
            f"{e2e['retrieves']} snapshot, {thin_e2e['retrieves']} thin); v2 ev: full v2 events "
            f"fetched ({V2_EVENT_ROUTE}); burst: {BURST} events of one customer, "
            f"{burst['coalesced']} snapshot and {thin_burst['coalesced']} thin coalesced"
        )
        thin_cost = thin_e2e["api_calls"] / thin_e2e["events"]
        snap_cost = e2e["api_calls"] / e2e["events"]
        print(
            f"target: thin costs no more calls per processed change than snapshots: "
            f"{'met' if thin_cost <= snap_cost and thin_burst['api_calls'] <= burst['api_calls'] else 'NOT met'}"
            f" (end to end {thin_cost:.2f} vs {snap_cost:.2f}; burst {thin_burst['api_calls']} "
            f"vs {burst['api_calls']})"
        )

    def cleanup(self) -> None:
        self.procs.stop_all()
        try:
            redis_flush()
        except Exception as exc:
            print(f"warning: could not flush redis db {REDIS_DB}: {exc}", file=sys.stderr)
        if self.db_created:
            try:
                with pg_connect("postgres") as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
            except Exception as exc:
                print(f"warning: could not drop {self.dbname}: {exc}", file=sys.stderr)


# --- Child: endpoints and a query count, inside Django against the bench database ----------


def child_setup(spec_path: str, out_path: str) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings
    from djstripe.models import Customer, WebhookEndpoint

    from billing import stripe_api
    from billing.webhooks import destinations, endpoints

    spec = json.loads(Path(spec_path).read_text())
    # Nothing listens on port 9: fakestripe's own delivery attempts fail at once; the bench
    # posts to the live servers with the same uuid in the path.
    product = endpoints.webhook_endpoint_create(
        base_url="http://127.0.0.1:9", description="bench: product intake"
    )
    dj_uuid = uuid.uuid4()
    created = stripe_api.create(
        object_type="webhook_endpoint",
        params={
            "url": f"http://127.0.0.1:9/djstripe/webhook/{dj_uuid}/",
            "enabled_events": ["customer.updated"],
            "api_version": settings.STRIPE_API_VERSION,
            "description": "bench: dj-stripe ProcessWebhookView",
            "metadata": {"djstripe_uuid": str(dj_uuid)},
        },
        idempotency_key=stripe_api.idempotency_key("bench-djstripe-endpoint", dj_uuid),
    )
    djs = WebhookEndpoint.sync_from_stripe_data(
        stripe_api.as_stripe_object(stripe_api.as_dict(created)),
        api_key=settings.STRIPE_SECRET_KEY,
    )
    djs.refresh_from_db()
    if not (djs.secret.startswith("whsec_") and str(djs.djstripe_uuid) == str(dj_uuid)):
        raise RuntimeError(f"dj-stripe endpoint not synced as expected: {djs.djstripe_uuid}")

    for customer in spec["mirror"]:
        Customer.sync_from_stripe_data(
            stripe_api.as_stripe_object(customer), api_key=settings.STRIPE_SECRET_KEY
        )

    # The product's thin event destination (it takes v1.customer.updated among the handled
    # types): deliveries to it fail at once, as the endpoint's do.
    thin = destinations.event_destination_create(
        base_url="http://127.0.0.1:9", description="bench: product thin intake"
    )

    out: dict = {}
    probes = iter(spec["probes"])
    for key, endpoint, urlconf, path in (
        ("product", product, "config.urls", f"/stripe/webhook/{product.djstripe_uuid}/"),
        ("djstripe", djs, "bench.djstripe_urls", f"/djstripe/webhook/{djs.djstripe_uuid}/"),
        ("thin", thin, "config.urls", f"/stripe/webhook/{thin.uuid}/"),
    ):
        queries, sql = [], []
        with override_settings(ROOT_URLCONF=urlconf):
            client = Client(SERVER_NAME="127.0.0.1")
            for _ in range(2):  # the second shows the steady state (caches, account row)
                body = next(probes).encode()
                with CaptureQueriesContext(connection) as captured:
                    response = client.post(
                        path,
                        data=body,
                        content_type="application/json",
                        HTTP_STRIPE_SIGNATURE=sign(body, endpoint.secret),
                    )
                if response.status_code != 200:
                    raise RuntimeError(f"{key} probe: {response.status_code} {response.content!r}")
                queries.append(len(captured))
                sql = [q["sql"][:300] for q in captured.captured_queries]
        out[key] = {
            "uuid": str(getattr(endpoint, "djstripe_uuid", None) or endpoint.uuid),
            "secret": endpoint.secret,
            "queries": queries,
            "sql": sql,
        }
    Path(out_path).write_text(json.dumps(out, indent=2))


# --- Entry point --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    global REDIS_DB, BROKER_URL
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child-setup"]:
        child_setup(argv[1], argv[2])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured time per receiver")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--events", type=int, default=300, help="end-to-end events")
    parser.add_argument("--storm-events", type=int, default=200, help="storm events (0: none)")
    parser.add_argument("--storm-error-rate", type=float, default=0.3)
    parser.add_argument("--storm-rate-limit", type=int, default=10, help="requests/s, then 429")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB, help="Redis db (flushed)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the log directory")
    args = parser.parse_args(argv)
    REDIS_DB = args.redis_db
    BROKER_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"

    # SIGTERM unwinds like Ctrl-C, so everything started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    log_dir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    bench = Bench(args, log_dir)
    ok = False
    try:
        bench.run()
        ok = True
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        bench.cleanup()
        if ok and not args.keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            logs = sorted(str(p) for p in log_dir.glob("*"))
            print(f"logs in {log_dir}: {', '.join(logs)}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
