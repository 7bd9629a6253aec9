"""pytest fixtures: `fakestripe_server` (one per session) and `fakestripe` (clean state).

Load with `pytest_plugins = ["fakestripe.pytest_plugin"]`. Webhook retries are fast here
(`FAKESTRIPE_RETRY_BASE`, default 0.05 s) so retry tests take milliseconds, not hours.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .client import FakeStripeClient
from .server import FakeStripeServer


@pytest.fixture(scope="session")
def fakestripe_server() -> Iterator[FakeStripeServer]:
    server = FakeStripeServer(
        "127.0.0.1",
        0,
        webhook_retry_base=float(os.environ.get("FAKESTRIPE_RETRY_BASE", "0.05")),
        webhook_max_attempts=int(os.environ.get("FAKESTRIPE_MAX_ATTEMPTS", "5")),
        # Long enough for a receiver that processes in the request (eager tasks), so a
        # delivery counts as in flight until the receiver has finished with it.
        webhook_timeout=float(os.environ.get("FAKESTRIPE_WEBHOOK_TIMEOUT", "10")),
    ).start()
    yield server
    server.stop()


@pytest.fixture
def fakestripe(fakestripe_server: FakeStripeServer) -> Iterator[FakeStripeClient]:
    client = FakeStripeClient(fakestripe_server.url)
    client.reset()
    yield client
