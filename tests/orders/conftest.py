"""Fixtures for the shop: the demo catalog in fakestripe, mirrored; customers; an order paid."""

from __future__ import annotations

import itertools

import pytest
from django.contrib.auth import get_user_model
from djstripe.models import Price

from orders.demo import demo_catalog_seed
from orders.demo_files import demo_downloads_write
from orders.services import catalog_sync

_usernames = itertools.count(1)


@pytest.fixture
def make_user(db):
    def make(**fields):
        n = next(_usernames)
        fields.setdefault("username", f"customer{n}")
        fields.setdefault("email", f"customer{n}@example.com")
        return get_user_model().objects.create_user(password="a-long-test-password", **fields)

    return make


@pytest.fixture
def customer(make_user):
    return make_user()


@pytest.fixture
def catalog(stripe_emulator, db) -> dict[str, str]:
    """The demo catalog created in the emulator and mirrored; price ids by a short name."""
    demo_catalog_seed()
    catalog_sync()

    def price(currency: str, interval: str | None = None) -> str:
        for p in Price.objects.filter(currency=currency, active=True):
            recurring = p.stripe_data.get("recurring") or {}
            if recurring.get("interval") == interval:
                return p.id
        raise LookupError((currency, interval))

    return {
        "usd": price("usd"),
        "jpy": price("jpy"),
        "eur": price("eur"),
        "monthly": price("usd", "month"),
        "yearly": price("usd", "year"),
    }


@pytest.fixture
def site_url(settings, live_server):
    """Checkout's success and cancel URLs point at the live server."""
    settings.SITE_URL = live_server.url
    return live_server.url


@pytest.fixture
def download_files(settings, tmp_path):
    """The demo's files in a downloads storage of the test's own."""
    root = tmp_path / "downloads"
    settings.STORAGES = {
        **settings.STORAGES,
        "downloads": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    assert demo_downloads_write() == 3
    return root
