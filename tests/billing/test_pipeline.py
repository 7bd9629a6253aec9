"""No event waits on an operator: Stripe outages, broker outages and dead workers, with the
real stack (HTTP intake, Redis, real Celery workers with their beat scheduler, fakestripe).

Run when CELERY_BROKER_URL is set (.ci/run sets it; on PostgreSQL and on SQLite).
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db.models import Count
from djstripe.models import Customer

from billing import stripe_api
from billing.models import InboundEvent
from billing.tasks import process_event
from billing.webhooks import intake as webhook_intake
from billing.webhooks import queue
from config.celery import app as celery_app
from tests.billing.test_processing import emitted
from tests.conftest import ROOT, events_final, signed_body, subprocess_env, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Ports of this suite's own servers (a broker to stop, a web server to send to).
SPARE_PORTS = range(12400, 12500)
RETRIEVE = "GET /v1/customers/{id}"


def free_port() -> int:
    for port in SPARE_PORTS:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port in 12400-12499")


def customers_created(count: int, prefix: str) -> list[dict]:
    """``count`` customers created in the emulator; their customer.created events."""
    ids = {
        stripe_api.create(object_type="customer", params={"email": f"{prefix}{n}@example.com"}).id
        for n in range(count)
    }
    found = [e for e in emitted(types=["customer.created"]) if e["data"]["object"]["id"] in ids]
    assert len(found) == count
    return found


def post_timed(url: str, secret: str, event: dict) -> tuple[int, float]:
    body, header = signed_body(event, secret)
    request = urllib.request.Request(
        url,
        data=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
        method="POST",
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    return status, time.monotonic() - started


def deliver_all(url: str, secret: str, events: list[dict], threads: int = 8):
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda e: post_timed(url, secret, e), events))


def assert_processed_once(events: list[dict]) -> None:
    ids = [e["id"] for e in events]
    stored = InboundEvent.objects.filter(id__in=ids)
    assert stored.count() == len(ids)  # nothing lost
    statuses = dict(stored.values_list("status").annotate(n=Count("id")))
    assert statuses == {"processed": len(ids)}, statuses
    customers = [e["data"]["object"]["id"] for e in events]
    mirrored = Customer.objects.filter(id__in=customers)
    assert mirrored.count() == len(customers)  # one mirror row each


@pytest.fixture
def worker_log(tmp_path):
    return tmp_path / "worker.log"


# --- A Stripe outage ------------------------------------------------------------------------


def test_stripe_outage_while_webhooks_arrive_acks_fast_and_processes_everything_once(
    stripe_emulator, intake, webhook_endpoint, live_server, celery_workers, settings, worker_log
):
    settings.BILLING_EVENT_RETRY_BASE_SECONDS = 1.0
    events = customers_created(50, "outage")
    celery_workers.start(concurrency=4, STRIPE_MAX_NETWORK_RETRIES="0", log=worker_log)
    # Given Stripe answering every request after 5 s, with a 500
    stripe_emulator.reset_stats()
    stripe_emulator.set_faults(latency=5.0, error_rate=1.0)
    url = f"{live_server.url}/stripe/webhook/{webhook_endpoint.djstripe_uuid}/"

    # When 50 webhooks arrive meanwhile (the workers are busy failing against Stripe)
    results = deliver_all(url, webhook_endpoint.secret, events)
    time.sleep(6)  # long enough for attempts to have failed against the outage
    failed_attempts = stripe_emulator.stats()["by_status"].get("500", 0)
    stripe_emulator.clear_faults()

    # Then every delivery was acknowledged, fast, and once Stripe is back all are processed
    assert [status for status, _ in results] == [200] * 50
    slowest = max(elapsed for _, elapsed in results)
    assert slowest < 1.0, f"slowest acknowledgement {slowest:.2f} s"
    assert failed_attempts > 0  # the outage was really met
    wait_for(events_final(50), timeout=120)
    assert_processed_once(events)
    assert InboundEvent.objects.filter(attempts__gt=1).exists()  # retried, from the event


# --- Requeuing an event in backoff ------------------------------------------------------------


def test_requeuing_an_event_in_backoff_does_not_start_a_second_chain(
    stripe_emulator, intake, celery_workers, settings, worker_log
):
    settings.BILLING_EVENT_MAX_ATTEMPTS = 3
    settings.BILLING_EVENT_RETRY_BASE_SECONDS = 4.0
    (event,) = customers_created(1, "backoff")
    celery_workers.start(concurrency=4, STRIPE_MAX_NETWORK_RETRIES="0", log=worker_log)
    stripe_emulator.reset_stats()
    stripe_emulator.set_faults(error_rate=1.0)  # every fetch fails: each attempt is one GET

    # Given the event failed once and waits 4 s for its retry
    assert intake(event) == 200
    wait_for(lambda: InboundEvent.objects.get().status == InboundEvent.Status.RETRYING)

    # When it is requeued every way there is, many times, during its backoff
    for _ in range(5):
        queue.events_requeue()
        queue.event_reprocess(event=InboundEvent.objects.get())
        process_event.delay(event["id"])
        assert intake(event) == 200  # a duplicate delivery
    time.sleep(1)
    assert stripe_emulator.stats()["by_route"].get(RETRIEVE) == 1  # nothing ran early

    # Then the event's own budget runs out after exactly 3 attempts: one chain
    wait_for(lambda: InboundEvent.objects.get().status == InboundEvent.Status.FAILED, timeout=40)
    time.sleep(3)  # any stray chain would show up as further fetches
    stored = InboundEvent.objects.get()
    assert stored.attempts == 3
    assert stripe_emulator.stats()["by_route"].get(RETRIEVE) == 3
    log = worker_log.read_text()
    assert log.count("attempt 1 failed") == 1
    assert log.count("attempt 2 failed") == 1
    assert log.count("failed after 3 attempts") == 1

    # And reprocessing the failed event gives it a fresh budget, still one chain
    stripe_emulator.clear_faults()
    for _ in range(3):
        queue.event_reprocess(event=stored)
    wait_for(events_final(1), timeout=30)
    time.sleep(1)
    assert InboundEvent.objects.get().attempts == 1
    assert stripe_emulator.stats()["by_route"].get(RETRIEVE) == 4


# --- A dead worker --------------------------------------------------------------------------


def test_worker_killed_mid_event_is_processed_within_the_lease_once(
    stripe_emulator, intake, celery_workers, worker_log
):
    lease = 10
    (event,) = customers_created(1, "killed")
    # Given a worker whose fetch from Stripe takes 8 s
    worker = celery_workers.start(concurrency=1)
    stripe_emulator.reset_stats()
    stripe_emulator.set_faults(latency=8.0)
    assert intake(event) == 200

    # When it is killed (SIGKILL, worker and pool) while the event is claimed, mid-fetch
    claimed = wait_for(
        lambda: InboundEvent.objects.filter(status=InboundEvent.Status.PROCESSING).first()
    )
    time.sleep(1)
    celery_workers.kill(worker)
    stored = InboundEvent.objects.get()
    assert stored.status == InboundEvent.Status.PROCESSING
    assert stored.processed_at is None
    stripe_emulator.clear_faults()

    # Then another worker's periodic requeue takes the event over once the lease is past,
    # long before the broker's visibility timeout (an hour) would give the task back
    celery_workers.start(
        concurrency=2,
        beat=True,
        log=worker_log,
        BILLING_EVENT_LEASE_SECONDS=str(lease),
        BILLING_REQUEUE_INTERVAL_SECONDS="2",
        CELERY_VISIBILITY_TIMEOUT="3600",
    )
    wait_for(events_final(1), timeout=60)
    stored = InboundEvent.objects.get()
    assert stored.status == InboundEvent.Status.PROCESSED
    took = (stored.processed_at - claimed.claimed_at).total_seconds()
    assert took <= lease + 8, f"processed {took:.1f} s after the claim"
    # the killed attempt counted; the mirror row and the effects happened once
    assert stored.attempts == 2
    assert "lease expired" in stored.last_error
    assert Customer.objects.filter(id=event["data"]["object"]["id"]).count() == 1
    # the killed attempt's fetch reached the emulator (it was mid-fetch), then one more
    wait_for(lambda: stripe_emulator.stats()["by_route"].get(RETRIEVE) == 2, timeout=15)
    assert "taking it over" in worker_log.read_text()


# --- A broker outage ------------------------------------------------------------------------


class RedisServer:
    """A redis-server of this test's own, on a spare port, to stop and start again."""

    def __init__(self, port: int, workdir: Path):
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", self.port)) == 0, timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def own_redis(tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    server = RedisServer(free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def web_server(own_redis, stripe_emulator, tmp_path):
    """gunicorn serving the product on a spare port, publishing to ``own_redis``."""
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = subprocess_env(
        DJANGO_DEBUG="true",
        CELERY_BROKER_URL=own_redis.url,
        STRIPE_API_BASE=stripe_emulator.url,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="2",
        GUNICORN_ACCESS_LOG="0",
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(15)


def test_broker_down_while_webhooks_arrive_every_event_processed_once_without_a_command(
    stripe_emulator, webhook_endpoint, own_redis, web_server, celery_workers, worker_log
):
    events = customers_created(40, "broker")
    url = f"{web_server}/stripe/webhook/{webhook_endpoint.djstripe_uuid}/"
    secret = webhook_endpoint.secret
    # A worker with its beat scheduler, shipped settings (requeue every 30 s)
    celery_workers.start(beat=True, broker_url=own_redis.url, log=worker_log)

    # Given the broker goes down for 30 s
    own_redis.stop()
    down_at = time.monotonic()
    # When 40 webhooks arrive meanwhile
    results = []
    for chunk in (events[:20], events[20:]):
        results += deliver_all(url, secret, chunk)
        time.sleep(5)
    assert [status for status, _ in results] == [200] * 40
    slowest = max(elapsed for _, elapsed in results)
    print(f"slowest acknowledgement with the broker down: {slowest:.2f} s")
    assert slowest < 2.0  # the publish attempt is bounded (about a second)
    assert InboundEvent.objects.filter(status=InboundEvent.Status.PENDING).count() == 40
    time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
    own_redis.start()
    back_at = time.monotonic()

    # Then within 3 minutes every event is processed once, and no command was run
    wait_for(events_final(40), timeout=180)
    assert_processed_once(events)
    assert set(InboundEvent.objects.values_list("attempts", flat=True)) == {1}
    print(f"all processed {time.monotonic() - back_at:.0f} s after the broker came back")


def test_events_pending_before_a_worker_with_beat_starts_are_picked_up(
    stripe_emulator, intake, celery_workers, settings
):
    """An event whose publish was lost (the row says queued long ago) needs no command."""
    events = customers_created(3, "lost")
    for event in events:
        webhook_intake.event_store(payload=event)  # queued on the test broker ...
    celery_app.control.purge()  # ... and lost
    InboundEvent.objects.update(queued_at=None)

    celery_workers.start(beat=True, BILLING_REQUEUE_INTERVAL_SECONDS="1")

    wait_for(events_final(3), timeout=30)
    assert_processed_once(events)
