"""State persistence (`--state FILE`) and the command line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import stripe

from fakestripe.server import FakeStripeServer

KEY = "sk_test_fakestripe"
ROOT = Path(__file__).resolve().parents[2]


def test_state_survives_a_restart_in_creation_order(tmp_path):
    state = tmp_path / "state.jsonl"
    with FakeStripeServer(state_file=str(state)) as server:
        client = stripe.StripeClient(KEY, base_addresses={"api": server.url}, max_network_retries=0)
        first = client.v1.customers.create(params={"email": "one@example.com"})
        second = client.v1.customers.create(params={"email": "two@example.com"})
        client.v1.customers.update(first.id, params={"metadata": {"k": "v"}})
        gone = client.v1.customers.create()
        client.v1.customers.delete(gone.id)
    lines = state.read_text().splitlines()
    assert all(json.loads(line) for line in lines)  # compacted: valid JSON lines
    with FakeStripeServer(state_file=str(state)) as server:
        client = stripe.StripeClient(KEY, base_addresses={"api": server.url}, max_network_retries=0)
        assert [c.id for c in client.v1.customers.list()] == [second.id, first.id]
        assert client.v1.customers.retrieve(first.id).metadata.to_dict() == {"k": "v"}
        assert client.v1.customers.retrieve(gone.id).deleted is True
        by_email = client.v1.customers.list(params={"email": "two@example.com"})
        assert [c.id for c in by_email] == [second.id]
        assert len(client.v1.events.list(params={"limit": 100}).data) == 5
        third = client.v1.customers.create()
        assert third.id > second.id  # ids keep sorting by creation after a restart


def test_a_torn_journal_line_is_ignored(tmp_path):
    state = tmp_path / "state.jsonl"
    with FakeStripeServer(state_file=str(state)) as server:
        client = stripe.StripeClient(KEY, base_addresses={"api": server.url}, max_network_retries=0)
        kept = client.v1.customers.create()
    with state.open("a") as journal:
        journal.write('{"put": {"id": "cus_torn"')  # a crash mid-write
    with FakeStripeServer(state_file=str(state)) as server:
        client = stripe.StripeClient(KEY, base_addresses={"api": server.url}, max_network_retries=0)
        assert [c.id for c in client.v1.customers.list()] == [kept.id]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_command_line_serves_persists_and_applies_fault_flags(tmp_path):
    port, state = _free_port(), tmp_path / "cli.jsonl"
    command = [
        sys.executable,
        "-m",
        "fakestripe",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--state",
        str(state),
        "--webhook-retry-base",
        "0.1",
        "--latency",
        "0.01",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                with urllib.request.urlopen(url + "/_fake/health", timeout=1) as response:
                    assert json.loads(response.read()) == {"ok": True}
                break
            except OSError:
                time.sleep(0.05)
        with urllib.request.urlopen(url + "/_fake/faults", timeout=1) as response:
            assert json.loads(response.read())["latency"] == 0.01
        client = stripe.StripeClient(KEY, base_addresses={"api": url}, max_network_retries=0)
        created = client.v1.customers.create(params={"email": "cli@example.com"})
    finally:
        process.terminate()
        process.wait(10)
    assert created.id in state.read_text()


def test_scheduled_work_and_destinations_survive_a_restart(tmp_path):
    """A refund due to fail later still fails after a restart; event destinations and thin
    events are kept like other objects."""
    state = tmp_path / "state.jsonl"
    with FakeStripeServer(state_file=str(state)) as server:
        client = stripe.StripeClient(KEY, base_addresses={"api": server.url}, max_network_retries=0)
        intent = client.v1.payment_intents.create(
            params={"amount": 900, "currency": "usd", "payment_method": "pm_card_refundFail",
                    "confirm": True}
        )  # fmt: skip
        destination = client.v2.core.event_destinations.create(
            params={"name": "kept", "type": "webhook_endpoint", "event_payload": "thin",
                    "enabled_events": ["v1.refund.created"],
                    "webhook_endpoint": {"url": "http://127.0.0.1:9/hook"}}
        )  # fmt: skip
        refund = client.v1.refunds.create(params={"payment_intent": intent.id})
    with FakeStripeServer(state_file=str(state)) as server:
        client = stripe.StripeClient(KEY, base_addresses={"api": server.url}, max_network_retries=0)
        assert client.v2.core.event_destinations.retrieve(destination.id).name == "kept"
        [thin] = client.v2.core.events.list(params={"object_id": refund.id}).data
        assert thin.type == "v1.refund.created"
        request = urllib.request.Request(server.url + "/_fake/scheduled/run", method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            ran = json.loads(response.read())["ran"]
        # run now, unless the ticker got there first (the job fell due 2 s after the refund)
        assert ran in ([{"object": refund.id, "action": "refund.fail"}], [])
        assert client.v1.refunds.retrieve(refund.id).status == "failed"
