import importlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from celery._state import _set_task_join_will_block
from django.conf import settings
from django.db import connection
from django.test.utils import override_settings

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent
TEST_STRIPE_KEY = "sk_test_shoptests0000000000000000"

pytest_plugins = ["fakestripe.pytest_plugin"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The suite builds tables from the models (--no-migrations); add the schema that only a
    migration creates: the unique index on LOWER(auth_user.email) (orders.0003), and the
    console's indexes stated in SQL (orders.0007 and 0009, billing.0009)."""
    from config.schema import indexes_create

    user_email_index = importlib.import_module("orders.migrations.0003_user_email_unique_ci")
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute(user_email_index.CREATE_INDEX)
        for module in ("orders.migrations.0007_console_at_scale",
                       "billing.migrations.0009_console_at_scale",
                       "orders.migrations.0009_refunds_disputes"):  # fmt: skip
            indexes_create(connection, importlib.import_module(module).INDEXES)


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hasher():
    """The suite makes users and signs them in thousands of times: PBKDF2's million rounds, a
    third of a second each, are not what it tests (Django's advice for test settings). The
    product keeps Django's default hashers."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture
def log_output():
    """What the configured log handler writes (its formatter and filters), in a buffer."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "stdout")
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit counters live in the (in-process) cache: each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def stripe_emulator(fakestripe, settings):
    """fakestripe with clean state, and the product pointed at it as it would be at Stripe."""
    settings.STRIPE_API_BASE = fakestripe.url
    settings.STRIPE_SECRET_KEY = TEST_STRIPE_KEY
    yield fakestripe
    # Stop deliveries and wait out the one in flight, so no webhook is being processed by the
    # live server while the test database is flushed (PostgreSQL deadlocks on TRUNCATE).
    fakestripe.reset()
    fakestripe.wait_deliveries(15)


@pytest.fixture
def webhook_endpoint(stripe_emulator, db):
    """An endpoint registered in the emulator whose URL nothing listens on.

    For tests that post deliveries themselves (``deliver_event``); the emulator's own
    delivery attempts to it fail harmlessly.
    """
    from billing.webhooks.endpoints import webhook_endpoint_create

    return webhook_endpoint_create(base_url="http://127.0.0.1:9")


@pytest.fixture
def live_webhook_endpoint(stripe_emulator, live_server):
    """An endpoint the emulator delivers signed webhooks to, on the live test server."""
    from billing.webhooks.endpoints import webhook_endpoint_create

    return webhook_endpoint_create(base_url=live_server.url)


def signed_body(event: dict, secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    from billing.stripe_api import signature_header

    body = json.dumps(event)
    header = signature_header(payload=body, secret=secret, timestamp=timestamp or int(time.time()))
    return body.encode(), header


@pytest.fixture
def intake(live_server, webhook_endpoint):
    """POST signed deliveries to the live server over HTTP, as Stripe does; returns the status."""

    # Read once here: a deferred field loaded from a sender thread would open (and leak) a
    # database connection per thread.
    url = f"{live_server.url}/stripe/webhook/{webhook_endpoint.djstripe_uuid}/"
    secret = webhook_endpoint.secret

    def post(event: dict) -> int:
        body, header = signed_body(event, secret)
        request = urllib.request.Request(
            url,
            data=body,
            headers={"Content-Type": "application/json", "Stripe-Signature": header},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status

    return post


def deliver_concurrently(post, event: dict, copies: int = 20) -> list[int]:
    """Send ``copies`` deliveries of one event at the same instant (threads on a barrier)."""
    start = threading.Barrier(copies)
    statuses: list[int] = []

    def deliver():
        start.wait()
        statuses.append(post(event))

    threads = [threading.Thread(target=deliver) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return statuses


def wait_for(predicate, timeout: float = 30, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def events_final(count: int):
    """A predicate: ``count`` stored events have reached a final status."""
    from billing.models import InboundEvent

    return lambda: InboundEvent.objects.filter(status__in=InboundEvent.FINAL).count() == count


@pytest.fixture
def deliver_event(client, webhook_endpoint):
    """POST an event through the real intake view, signed with the endpoint's secret."""

    def deliver(event: dict, *, endpoint=None, secret: str | None = None, timestamp=None):
        endpoint = endpoint or webhook_endpoint
        body, header = signed_body(event, secret or endpoint.secret, timestamp)
        return client.post(
            f"/stripe/webhook/{endpoint.djstripe_uuid}/",
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=header,
        )

    return deliver


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless, driven by Playwright's sync API (skips without it)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make browsers)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between page steps are still plain synchronous code.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _celery_eager_unless_worker(request):
    """Tests run tasks in process, except those that exercise a real worker."""
    eager = request.node.get_closest_marker("worker") is None
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = eager
    yield
    celery_app.conf.task_always_eager = previous
    # Task.apply (eager) saves and restores Celery's process-wide "inside a task" flag; eager
    # tasks running at once in live-server threads can leave it set, and a later
    # result.get() then refuses to run. Clear it between tests.
    _set_task_join_will_block(False)


def database_url_for_subprocess() -> str:
    """The URL of the database this test uses (the test database), for child processes."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )


def subprocess_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url_for_subprocess(),
        "PYTHONPATH": str(ROOT),
        **extra,
    }


class WorkerPool:
    """Real `celery worker` processes on the configured broker, sharing the test database."""

    def __init__(self):
        self.processes: list[subprocess.Popen] = []

    def start(
        self,
        concurrency: int = 2,
        *,
        beat: bool = False,
        schedule: Path | None = None,
        broker_url: str | None = None,
        log: Path | None = None,
        **env: str,
    ) -> subprocess.Popen:
        """A worker (with its beat scheduler when ``beat``, its state in ``schedule`` if given),
        on ``broker_url`` if given."""
        extra = {
            "DJANGO_DEBUG": "true",
            "STRIPE_API_BASE": settings.STRIPE_API_BASE or "",
            "STRIPE_SECRET_KEY": settings.STRIPE_SECRET_KEY,
            "BILLING_EVENT_RETRY_BASE_SECONDS": str(settings.BILLING_EVENT_RETRY_BASE_SECONDS),
            "BILLING_EVENT_MAX_ATTEMPTS": str(settings.BILLING_EVENT_MAX_ATTEMPTS),
            **({"CELERY_BROKER_URL": broker_url} if broker_url else {}),
            **env,
        }
        name = f"test-{os.getpid()}-{len(self.processes)}"
        beat_args = []
        if beat:
            schedule = schedule or Path(tempfile.mkdtemp(prefix="celerybeat-")) / "schedule"
            beat_args = ["--beat", "--schedule", str(schedule)]
        output = log.open("ab") if log else subprocess.DEVNULL
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork",
             f"--concurrency={concurrency}", "--loglevel=INFO", "--without-gossip",
             "--without-mingle", "--without-heartbeat", *beat_args, "-n", f"{name}@%h"],
            cwd=ROOT, env=subprocess_env(**extra), stdout=output,
            stderr=subprocess.STDOUT if log else subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self.processes.append(proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early with {proc.returncode}")
            if broker_url:
                # A broker of the test's own: the worker's log says when it is ready.
                if log and f"{name}@" in log.read_text() and " ready." in log.read_text():
                    return proc
                time.sleep(0.2)
                continue
            replies = celery_app.control.ping(timeout=0.5)
            if any(n.startswith(f"{name}@") for r in replies for n in r):
                return proc
        raise RuntimeError("celery worker did not answer ping within 30 s")

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL the worker and its pool children, as a crash or OOM kill would."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def kill_main(self, proc: subprocess.Popen) -> None:
        """SIGKILL the worker's main process only, as ``kill -9 <pid>`` does."""
        proc.kill()
        proc.wait(10)

    @staticmethod
    def survivors(proc: subprocess.Popen) -> list[str]:
        """The processes still running in the worker's process group (its pool, its beat)."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after it
                fields = stat.read_text().rpartition(")")[2].split()
                if int(fields[2]) == proc.pid and fields[0] != "Z":
                    found.append((stat.parent / "cmdline").read_bytes().decode(errors="replace"))
            except OSError:
                continue  # it ended meanwhile
        return found

    def stop_all(self) -> None:
        for proc in self.processes:
            # the group too when the main process is gone: a child left running is stopped
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def celery_workers(transactional_db):
    """Start real workers with ``celery_workers.start()``; needs CELERY_BROKER_URL (.ci/run sets it)."""
    if not settings.CELERY_BROKER_URL:
        pytest.skip("CELERY_BROKER_URL is not set: no broker for a real worker")
    celery_app.connection_for_write().ensure_connection(max_retries=3)
    # Drop tasks left over from an earlier run so these workers see only ours.
    celery_app.control.purge()
    pool = WorkerPool()
    yield pool
    pool.stop_all()
    celery_app.control.purge()


@pytest.fixture
def celery_worker_process(celery_workers):
    """One real worker process (two pool processes)."""
    return celery_workers.start()
