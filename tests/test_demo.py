"""`make demo` as a newcomer runs it: its own processes (fakestripe, a real Celery worker with
beat on the embedded filesystem broker, runserver), driven over HTTP like a browser would.

The outage test runs the demo from scratch (a fresh SQLite file, so the migrations take a
minute or two): that is the point, it is the same start a newcomer gets.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT

pytestmark = pytest.mark.demo


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_env(**extra: str) -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "STRIPE_", "CELERY_", "DATABASE_"))
    }
    return {**clean, **extra}


def test_make_demo_says_which_port_is_taken(tmp_path):
    # Given something already listening on the emulator's port
    taken, demo_port = free_port(), free_port()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        # When a newcomer runs make demo
        started = time.monotonic()
        result = subprocess.run(
            ["make", "--no-print-directory", "demo", f"FAKESTRIPE_PORT={taken}",
             f"DEMO_PORT={demo_port}", f"DEMO_DIR={tmp_path / 'demo'}", f"PY={sys.executable}"],
            cwd=ROOT, env=make_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    # Then it stops at once with one sentence saying what to do, before touching anything
    assert result.returncode != 0
    assert f"port {taken} is in use; set FAKESTRIPE_PORT=" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert time.monotonic() - started < 30
    assert not (tmp_path / "demo").exists()


class Demo:
    """scripts/demo.py in a process of its own, its output collected line by line."""

    def __init__(self, tmp_path: Path):
        self.port, self.stripe_port = free_port(), free_port()
        self.site = f"http://127.0.0.1:{self.port}"
        self.stripe = f"http://127.0.0.1:{self.stripe_port}"
        self.db = tmp_path / "demo.sqlite3"
        self.env_file = tmp_path / ".env"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "scripts/demo.py"], cwd=ROOT,
            env=make_env(
                DEMO_PORT=str(self.port), FAKESTRIPE_PORT=str(self.stripe_port),
                DEMO_DIR=str(tmp_path / "demo"), DATABASE_URL=f"sqlite:///{self.db}",
                DEMO_ENV_FILE=str(tmp_path / ".env"),
            ),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(pattern, line)
                if found:
                    return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"no line matching {pattern!r}:\n" + "\n".join(self.lines[-40:]))

    def query(self, sql: str, *args) -> list[tuple]:
        with sqlite3.connect(self.db, timeout=20) as conn:
            return conn.execute(sql, args).fetchall()

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                raise
        self.reader.join(10)
        return self.proc.returncode


@pytest.fixture
def demo(tmp_path):
    running = Demo(tmp_path)
    yield running
    if running.proc.poll() is None:
        running.stop()


def logged_in(demo: Demo, password: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{demo.site}/accounts/login/", timeout=10)
    page.raise_for_status()
    answer = browser.post(
        f"{demo.site}/accounts/login/",
        data={
            "username": "customer",
            "password": password,
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            "next": "/",
        },
        timeout=10,
    )
    assert answer.url == f"{demo.site}/", answer.text
    return browser


def test_demo_fulfils_an_order_paid_during_a_stripe_outage(demo):
    # Given the demo, started as make demo starts it
    password = demo.wait_for_line(r"log in as customer / (\S+)", timeout=420).group(1)
    demo.wait_for_line(r"\[worker\].*\bready\.", timeout=10)
    assert any("The shop is serving at" in line for line in demo.lines)
    browser = logged_in(demo, password)
    catalog = browser.get(f"{demo.site}/", timeout=10).text
    price, token = re.search(
        r'data-price="(price_\w+)".*?name="request_token" value="([^"]+)"', catalog, re.S
    ).groups()
    bought = browser.post(
        f"{demo.site}/buy/",
        data={
            "price_id": price,
            "quantity": 1,
            "request_token": token,
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
        allow_redirects=False,
        timeout=15,
    )
    checkout = bought.headers["Location"]
    assert checkout.startswith(f"{demo.stripe}/checkout/pay/cs_")

    # When Stripe's API slows down and fails (every request: 2 s, then a 500) while the
    # customer pays on the hosted page, which keeps working, as Stripe's does
    requests.post(f"{demo.stripe}/_fake/faults", json={"latency": 2, "error_rate": 1}, timeout=5)
    paid = requests.post(
        checkout, data={"card": "4242424242424242"}, allow_redirects=False, timeout=15
    )
    assert paid.status_code == 303
    started = time.monotonic()
    back = browser.get(paid.headers["Location"], timeout=15)
    # Then the return page answers in time, saying the payment is being confirmed
    assert time.monotonic() - started < 10
    assert "Confirming your payment" in back.text and 'http-equiv="refresh"' in back.text

    # and the webhook was taken in, its processing failing and waiting for its retry
    def event_state():
        rows = demo.query(
            "SELECT status, attempts FROM billing_inboundevent "
            "WHERE type = 'checkout.session.completed'"
        )
        return rows[0] if rows else None

    deadline = time.monotonic() + 90
    while (event_state() or ("",))[0] != "retrying":
        assert time.monotonic() < deadline, f"event never failed an attempt: {event_state()}"
        time.sleep(1)
    assert demo.query("SELECT status FROM orders_order") == [("awaiting_payment",)]

    # When Stripe recovers, with nobody touching anything
    requests.delete(f"{demo.stripe}/_fake/faults", timeout=5)

    # Then the worker's own retry fulfils the order, and the customer's list says so
    deadline = time.monotonic() + 120
    while demo.query("SELECT status FROM orders_order") != [("fulfilled",)]:
        assert time.monotonic() < deadline, "\n".join(demo.lines[-40:])
        time.sleep(1)
    status, attempts = event_state()
    assert status == "processed" and attempts >= 2
    (source,) = demo.query("SELECT source FROM orders_orderhistory WHERE to_status = 'paid'")[0]
    assert source == "webhook checkout.session.completed"
    orders = browser.get(f"{demo.site}/orders/", timeout=10).text
    assert "Complete" in orders

    # And an operator's ./manage.py in the same folder, with only the .env the demo wrote,
    # talks to the demo's emulator and database, not to api.stripe.com
    assert any(re.search(r"^Wrote \.env: \./manage\.py", line) for line in demo.lines)
    assert f"STRIPE_API_BASE={demo.stripe}" in demo.env_file.read_text()
    calls = requests.get(f"{demo.stripe}/_fake/stats", timeout=5).json()["total"]
    reconcile = subprocess.run(
        [sys.executable, "manage.py", "stripe_reconcile"], cwd=ROOT, capture_output=True,
        text=True, timeout=120, env=make_env(DJANGO_ENV_FILE=str(demo.env_file)),
    )  # fmt: skip
    assert reconcile.returncode == 0, reconcile.stdout + reconcile.stderr
    assert requests.get(f"{demo.stripe}/_fake/stats", timeout=5).json()["total"] > calls
    # its step lines stand on their own: none glued to a child's line
    assert not any(re.search(r"\S\s*\[(worker|web|stripe)\]", line) for line in demo.lines)
    assert any(line.startswith("  [web]") and "gunicorn" in line.lower() for line in demo.lines)

    # And SIGTERM stops everything cleanly
    assert demo.stop() == 0
    assert demo.lines[-1] == "Stopped."
    for port in (demo.port, demo.stripe_port):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served"
