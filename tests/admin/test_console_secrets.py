"""Secrets and card numbers someone already put in Stripe's metadata are never sent to a
browser: not on the object's page, its raw JSON, the metadata form (inputs or its hidden
state), event payloads, audit entries or the order's page. A secret can still be removed
through the form without being shown. Stripe is the emulator over HTTP; events are delivered
signed through the real intake."""

from __future__ import annotations

import base64
import re

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from billing import stripe_api
from billing.console import resync
from billing.models import AuditEntry, InboundEvent
from tests.admin.conftest import deliver_all_events
from tests.admin.test_console_metadata import metadata_page, paid_charge, stripe_metadata

pytestmark = pytest.mark.django_db(transaction=True)

# What a careless integration (or an attacker with the API key) left in a charge's metadata,
# each in a spelling the old checks let through; and the part of each that must never show.
PLANTED = {
    "api": ("SK_LIVE_51Habcdefghijklmnop1234", "abcdefghijklmnop1234"),
    "glued": ("xsk_live_51Hqrstuvwxyzabcd5678", "qrstuvwxyzabcd5678"),
    "hook": ("1whsec_zyxwvutsrqponmlk9012", "zyxwvutsrqponmlk9012"),
    "card_dots": ("4242.4242.4242.4242", "4242.4242.4242"),
    "card_nbsp": ("4000\u00a00566\u00a05566\u00a05556", "0566\u00a05566"),
    "password": ("correct-horse-battery", "correct-horse-battery"),
    "accessToken": ("plain-looking-value-77", "plain-looking-value-77"),
}


def leaks(text: str) -> list[str]:
    """Every planted value whose hidden part appears in ``text`` (also base64-decoded)."""
    decoded = [text]
    for blob in re.findall(r"[A-Za-z0-9_-]{24,}={0,2}", text):
        try:
            decoded.append(base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4)).decode())
        except (ValueError, UnicodeDecodeError):
            continue
    whole = "\n".join(decoded).replace("&nbsp;", "\u00a0").replace("&#x27;", "'")
    return [key for key, (_, part) in PLANTED.items() if part in whole]


def browser_data(response, *, remove: str = "", add: dict[str, str] | None = None) -> dict:
    """What the browser sends back from the form: hidden rows' inputs empty, ``remove``'s row
    ticked, ``add`` in new rows."""
    data = {"state": response.context["state"], "original": [], "key": [], "value": [],
            "remove": []}  # fmt: skip
    for index, row in enumerate(r for r in response.context["rows"] if r.original):
        data["original"].append(row.ref)
        data["key"].append("" if row.hidden else row.key)
        data["value"].append("" if row.hidden else row.value)
        if row.original == remove:
            data["remove"].append(str(index))
    for key, value in (add or {}).items():
        data["original"].append("")
        data["key"].append(key)
        data["value"].append(value)
    return data


@pytest.fixture
def planted(world, staff, stripe_emulator, deliver_event):
    """The charge with the planted metadata: in Stripe, in the mirror, in an event's payload."""
    charge = paid_charge(world)
    stripe_api.update(
        object_type="charge",
        stripe_id=charge.id,
        params={"metadata": {key: value for key, (value, _) in PLANTED.items()}},
    )
    deliver_all_events(deliver_event)  # charge.updated, with the metadata in its payload
    resync.object_resync(actor=staff.superuser, object_type="charge", stripe_id=charge.id)
    assert InboundEvent.objects.filter(object_id=charge.id, type="charge.updated").exists()
    return charge


@pytest.mark.parametrize("who", ["support", "billing", "superuser"])
def test_no_page_shows_a_planted_secret(planted, world, staff, who):
    client = staff.client(who)
    event = InboundEvent.objects.filter(object_id=planted.id, type="charge.updated").first()
    pages = {
        "charge page": reverse("admin:djstripe_charge_change", args=[quote(planted.id)]),
        "metadata form": metadata_page(planted),
        "event page": reverse("admin:billing_inboundevent_change", args=[event.pk]),
        "order page": reverse("admin:orders_order_change", args=[world.paid.pk]),
        "audit list": reverse("admin:billing_auditentry_changelist"),
    }
    for name, url in pages.items():
        response = client.get(url)
        assert response.status_code == 200, (name, response.status_code)
        assert leaks(response.content.decode()) == [], name
    form = client.get(metadata_page(planted)).content.decode()
    # each planted row is there, masked, with no input holding its value
    assert "•••• 4242" in form and "sk_live_…1234" in form.lower(), form[
        form.find("metadata-rows") :
    ][:3000]
    assert form.count("sensitive: not shown") == len(PLANTED)


def test_a_secret_is_removed_without_being_shown(planted, staff):
    client = staff.client("support")
    page = metadata_page(planted)
    response = client.get(page)
    data = browser_data(response, remove="api")
    saved = client.post(page, data)
    assert saved.status_code == 302, saved.content.decode()[:2000]
    held = stripe_metadata("charge", planted.id)
    # only "api" went; every other hidden value is still exactly what it was
    assert "api" not in held
    for key, (value, _) in PLANTED.items():
        if key != "api":
            assert held[key] == value, key
    entry = AuditEntry.objects.filter(stripe_id=planted.id, action="metadata_update").latest("at")
    assert entry.result == AuditEntry.Result.DONE and entry.changes[0][0] == "api"
    # and the audit entry, which holds the removed value, shows it masked
    shown = client.get(reverse("admin:billing_auditentry_change", args=[entry.pk]))
    assert shown.status_code == 200 and leaks(shown.content.decode()) == []
    after = client.get(reverse("admin:djstripe_charge_change", args=[quote(planted.id)]))
    assert leaks(after.content.decode()) == []


def test_typed_secrets_are_refused_and_not_echoed(planted, staff):
    client = staff.client("support")
    page = metadata_page(planted)
    response = client.get(page)
    data = browser_data(response, add={"note2": "4242/4242/4242/4242", "p4ssword": "hunter22"})
    refused = client.post(page, data)
    body = refused.content.decode()
    assert refused.status_code == 200 and "Nothing was sent to Stripe" in body
    assert "4242/4242" not in body and "hunter22" not in body
    assert "note2" not in stripe_metadata("charge", planted.id)
